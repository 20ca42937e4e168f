"""An HTTP delivery to a team that is not responsible for its conversation is a standby copy:
held ``standby_grace`` (0.5 s here), and answered only when the hold ends, by the responsible
team's copy claiming the event (200, a duplicate) or by its rescue (200, handled here). Acking it
earlier would make this replica responsible for an event it only holds in memory.

One app per team (the guide's org): Team One's over RTM (the shared channel's host: responsible),
Team Two's over HTTP; the simulator delivers both copies of each message, and its timing faults
decide which comes first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gridtest import SHARED, T1, T2, separate_apps_topology, wait_until
from httpkit import FAST, SECRET, delivery_of, http_config, http_runtime, subscribe

from gridbot.config import Config, EventsConfig, TeamConfig, replace
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for

HTTP_APP = "A0APP2"  # Team Two's app


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(separate_apps_topology(), time_scale=FAST) as simulator:
        yield simulator


def mixed(sim: GridSimulator) -> Config:
    """Team One over RTM, Team Two over HTTP."""
    base = config_for(sim, {T1: "rtm"})
    http = TeamConfig(transport="http", bot_token=Secret("xoxb-sim-T0TEAM002"), signing_secret=Secret(SECRET))
    return replace(base, teams=(*base.teams, http), events=EventsConfig(port=0))


async def test_a_held_copy_is_acked_when_the_responsible_teams_copy_claims_it(sim: GridSimulator) -> None:
    async with http_runtime(mixed(sim)) as (rt, url):
        await subscribe(sim, url, app=HTTP_APP)
        sim.lag(0.3, team=T1, times=1)  # Team One's RTM copy comes second, within the grace
        ts = await sim.post_message(user="W0ALICE01", channel=SHARED, text="echo held")
        assert rt.dedup is not None
        dedup = rt.dedup
        await wait_until(lambda: dedup.counters.standby == 1, 5, "the HTTP copy held as standby")
        [delivering] = [d for d in sim.http.deliveries if d.ts == ts]
        assert delivering.outcome is None  # not acknowledged while only held
        delivery = await delivery_of(sim, ts)
        assert delivery.acked and delivery.attempts[0].seconds < 0.5  # before the grace ran out
        assert {(i.kind, i.team) for i in sim.injected} == {("lag", T1)}  # only Team One was late
        assert rt.events is not None and rt.events.counts.answers[(200, "duplicate")] == 1
        await wait_until(lambda: len(sim.posted) == 1, 5, "one reply")
        assert [(p.text, p.team_id) for p in sim.posted] == [("held", T1)]


async def test_a_held_copy_nobody_claims_is_rescued_then_acked(sim: GridSimulator) -> None:
    async with http_runtime(mixed(sim)) as (rt, url):
        await subscribe(sim, url, app=HTTP_APP)
        sim.lag(30.0, team=T1, times=1)  # Team One's copy comes far too late
        ts = await sim.post_message(user="W0ALICE01", channel=SHARED, text="echo rescued")
        delivery = await delivery_of(sim, ts)
        assert delivery.acked and 0.5 <= delivery.attempts[0].seconds < 2.5
        assert rt.events is not None and rt.events.counts.answers[(200, "rescued")] == 1
        await wait_until(lambda: len(sim.posted) == 1, 5, "one reply")
        assert [(p.text, p.team_id) for p in sim.posted] == [("rescued", T2)]


async def test_http_only_apps_never_hold() -> None:
    """Every team of the app speaks for the delivery (Slack sends one copy per app): handled at once."""
    async with GridSimulator(time_scale=FAST) as sim, http_runtime(http_config(sim)) as (rt, url):
        await subscribe(sim, url)
        ts = await sim.post_message(user="W0BOB0001", channel=SHARED, text="echo at once")
        assert (await delivery_of(sim, ts)).acked
        await wait_until(lambda: len(sim.posted) == 1, 5, "the reply")
        assert rt.dedup is not None and rt.dedup.counters.standby == 0
