"""An HTTP delivery to a team that is not responsible for its conversation is a standby copy:
held ``standby_grace`` (0.5 s here), and answered only when the hold ends, by the responsible
team's copy claiming the event (200, a duplicate) or by its rescue (200, handled here). Acking it
earlier would make this replica responsible for an event it only holds in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from gridtest import SHARED, T1, T2, wait_until
from httpkit import SECRET, http_config, http_runtime, sender

from gridbot.config import EventsConfig, TeamConfig, replace
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator
from gridbot.testing.events_sender import event_callback, message
from gridbot.testing.harness import config_for


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator() as simulator:
        yield simulator


def mixed(sim: GridSimulator):  # type: ignore[no-untyped-def]
    """Team One over RTM (the shared channel's host: responsible), Team Two over HTTP."""
    base = config_for(sim, {T1: "rtm"})
    http = TeamConfig(transport="http", bot_token=Secret("xoxb-sim-T0TEAM002"), signing_secret=Secret(SECRET))
    return replace(base, teams=(*base.teams, http), events=EventsConfig(port=0))


async def test_a_held_copy_is_acked_when_the_responsible_teams_copy_claims_it(sim: GridSimulator) -> None:
    async with http_runtime(mixed(sim)) as (rt, url), sender(url) as slack:
        event = message(SHARED, "W0ALICE01", "echo held", team=T1)
        delivering = asyncio.create_task(slack.deliver(event_callback(event, team_id=T2)))
        assert rt.dedup is not None
        dedup = rt.dedup
        await wait_until(lambda: dedup.counters.standby == 1, 5, "the HTTP copy held as standby")
        assert not delivering.done()  # not acknowledged while only held
        await sim.send_event(event, team=T1)  # the responsible team's own copy, over RTM
        delivery = await delivering
        assert delivery.acked and delivery.attempts[0].seconds < 0.5  # before the grace ran out
        assert rt.events is not None and rt.events.counts.answers[(200, "duplicate")] == 1
        await wait_until(lambda: len(sim.posted) == 1, 5, "one reply")
        assert [(p.text, p.team_id) for p in sim.posted] == [("held", T1)]


async def test_a_held_copy_nobody_claims_is_rescued_then_acked(sim: GridSimulator) -> None:
    async with http_runtime(mixed(sim)) as (rt, url), sender(url) as slack:
        event = message(SHARED, "W0ALICE01", "echo rescued", team=T1)  # Team One never gets it
        delivery = await slack.deliver(event_callback(event, team_id=T2))
        assert delivery.acked and 0.5 <= delivery.attempts[0].seconds < 2.5
        assert rt.events is not None and rt.events.counts.answers[(200, "rescued")] == 1
        await wait_until(lambda: len(sim.posted) == 1, 5, "one reply")
        assert [(p.text, p.team_id) for p in sim.posted] == [("rescued", T2)]


async def test_http_only_apps_never_hold(sim: GridSimulator) -> None:
    """Every team of the app speaks for the delivery (Slack sends one copy per app): handled at once."""
    async with http_runtime(http_config(sim)) as (rt, url), sender(url) as slack:
        event = message(SHARED, "W0BOB0001", "echo at once", team=T2)
        assert (await slack.deliver(event_callback(event, team_id=T2))).acked
        assert rt.dedup is not None and rt.dedup.counters.standby == 0
