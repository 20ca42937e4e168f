"""What a verified request becomes: a challenge answered, a rate-limit notice counted, an event
for the right installation, an interaction handed over as Socket Mode hands it over.

Shapes from platform-2026.md ("Events API over HTTP", "Interactivity") and
slack-protocol-notes.md (D: ``authorizations[0]`` names the installation; the top-level
``team_id`` is the source team in shared channels).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import orjson
import pytest
from gridtest import SHARED, T1, T2, log_lines, wait_until
from httpkit import APP, FAST, event_callback, http_config, http_runtime, message, subscribe

from gridbot.config import TeamConfig
from gridbot.context import Context
from gridbot.events import FrameError
from gridbot.interactive.context import InteractiveContext
from gridbot.plugins import Plugin
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState
from gridbot.testing import GridSimulator
from gridbot.testing.simulator import HttpPolicy, form_body
from gridbot.transport.http_apps import FORM, EventsApp, Pending


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[GridSimulator]:
    async with GridSimulator(**{"time_scale": FAST, **getattr(request, "param", {})}) as simulator:
        yield simulator


async def test_url_verification_is_answered_with_its_challenge(sim: GridSimulator) -> None:
    async with http_runtime(http_config(sim)) as (_, url):
        await subscribe(sim, url)  # the simulator saves the URL only once its challenge came back
        [verification] = list(sim.http.deliveries)
        assert verification.kind == "url_verification" and verification.acked
        challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        delivery = await sim.http.deliver(
            APP, {"token": "t", "challenge": challenge, "type": "url_verification"}
        )
    assert delivery.acked
    assert orjson.loads(delivery.answer) == {"challenge": challenge}


ONE_AN_HOUR = {"http": HttpPolicy(events_per_hour=1), "time_scale": 1.0}  # one notice a (real) minute


@pytest.mark.parametrize("sim", [ONE_AN_HOUR], indirect=True, ids=["1/hour"])
async def test_app_rate_limited_is_logged_and_counted(sim: GridSimulator) -> None:
    """The simulator is over its budget of events for Team One: it sends ``app_rate_limited``
    (once a minute), and the events over the budget are not sent."""
    async with http_runtime(http_config(sim)) as (rt, url):
        await subscribe(sim, url)
        with log_lines("info") as logs:
            await sim.post_message(user="W0ALICE01", channel="C0ONE0001", text="one")  # Team One's bot only
            await sim.post_message(user="W0ALICE01", channel="C0ONE0001", text="two")
            await wait_until(lambda: rt.events is not None and rt.events.counts.rate_limited, 5, "the notice")
        [notice] = [d for d in sim.http.deliveries if d.kind == "app_rate_limited"]
        assert notice.acked and sim.http.counts(APP).rate_limited >= 1  # "two" (and maybe the reply to "one")
        assert len([d for d in sim.http.deliveries if d.kind == "event_callback"]) == 1  # "one" only
        minute = int(next(n for n in sim.http.notices).detail.removeprefix("minute "))
        lines = [json.loads(x) for x in logs.getvalue().splitlines() if x.startswith("{")]
        limited = [x for x in lines if x["event"] == "events.app_rate_limited"]
        assert [(x["team_id"], x["minute_rate_limited"], x["level"]) for x in limited] == [
            (T1, minute, "warning")
        ]
        assert rt.events is not None and rt.events.counts.rate_limited == {T1: 1}
        assert b'gridbot_events_app_rate_limited_total{team_id="T0TEAM001"} 1.0' in rt.metrics.render()


def recorder(seen: list[tuple[str, str, str | None]]) -> Plugin:
    plugin = Plugin("recorder")

    @plugin.slash("/standup")
    async def slash(ctx: InteractiveContext, text: str) -> str:
        seen.append(("slash_command", ctx.team_id, ctx.interaction.command))
        return f"standup: {text}"

    @plugin.action("approve")
    async def interactive(ctx: InteractiveContext) -> None:
        seen.append(("interactive", ctx.team_id, ctx.interaction.kind))

    @plugin.event("message")
    async def said(ctx: Context) -> None:
        seen.append(("message", ctx.team_id, ctx.event.text))

    return plugin


async def test_slash_commands_and_interactive_payloads_are_answered_with_their_ack(sim: GridSimulator) -> None:
    """Form-encoded, verified like events, handed to the interactions (gridbot.interactive) as
    Socket Mode hands its envelopes; the HTTP answer is the ack: the slash command's immediate
    message as JSON, an empty 200 for a click (platform-2026.md, "Interactivity")."""
    seen: list[tuple[str, str, str | None]] = []
    command = {"command": "/standup", "text": "in", "team_id": T2, "channel_id": SHARED, "user_id": "W0BOB0001",
               "response_url": "https://hooks.slack.com/commands/1/2/3", "trigger_id": "1.2.3"}  # fmt: skip
    action = {"type": "block_actions", "team": {"id": T1}, "user": {"id": "W0ALICE01"}, "channel": {"id": SHARED},
              "trigger_id": "4.5.6", "actions": [{"action_id": "approve"}]}  # fmt: skip
    async with http_runtime(http_config(sim), plugins=[recorder(seen)]) as (_, url):
        await subscribe(sim, url)
        answers = []
        for fields in (command, {"payload": json.dumps(action)}, {"ssl_check": "1", "token": "t"}):
            delivery = await sim.http.deliver(APP, form_body(fields), content_type=FORM, retries=False)
            answers.append((delivery.attempts[0].status, delivery.answer))
        assert answers[0][0] == 200 and orjson.loads(answers[0][1] or b"") == {
            "response_type": "ephemeral",
            "text": "standup: in",
        }
        assert answers[1:] == [(200, b""), (200, b"")]
        await wait_until(lambda: len(seen) == 2, 5, "both handled")
    assert sorted(seen) == [("interactive", T1, "block_actions"), ("slash_command", T2, "/standup")]


async def test_an_event_for_an_installation_we_do_not_serve_is_acked_and_dropped(sim: GridSimulator) -> None:
    """Acked (Slack retrying it cannot help), logged as frame.dropped, never handled."""
    seen: list[tuple[str, str, str | None]] = []
    async with http_runtime(http_config(sim, teams=(T1,)), plugins=[recorder(seen)]) as (rt, url):
        await subscribe(sim, url)
        with log_lines("info") as logs:
            stranger = event_callback(message(SHARED, "W0BOB0001", "hi", team=T2), team_id=T2)
            assert (await sim.http.deliver(APP, stranger)).acked
            marker = event_callback(message(SHARED, "W0ALICE01", "marker", team=T1), team_id=T1)
            assert (await sim.http.deliver(APP, marker)).acked
        await wait_until(lambda: seen == [("message", T1, "marker")], 5, "the marker handled")
        dropped = [json.loads(x) for x in logs.getvalue().splitlines() if '"frame.dropped"' in x]
        assert [(d["reason"], d["transport"]) for d in dropped] == [("unknown_installation", "http")]
        assert rt.events is not None and rt.events.counts.answers[(200, "frame_dropped")] == 1


def _app(*teams: Team) -> EventsApp:
    return EventsApp("http:x", Secret("s"), list(teams), {t.team_id: t for t in teams if t.team_id})


def _team(index: int, team_id: str, enterprise: str | None = "E0GRID001") -> Team:
    config = TeamConfig(transport="http", bot_token=Secret(f"xoxb-{index}"), signing_secret=Secret("s"))
    return Team(index, config, team_id=team_id, enterprise_id=enterprise, state=TeamState.CONNECTED)


def test_routing_prefers_the_authorization_over_the_source_team() -> None:
    one, two = _team(0, T1), _team(1, T2)
    app = _app(one, two)
    shared = event_callback(message(SHARED, "W0ALICE01", "hi", team=T1), team_id=T2, source_team=T1)
    assert app.route(shared) == (two, "E0GRID001")
    assert app.route({"team_id": T1, "authorizations": []}) == (one, "E0GRID001")
    assert app.route({"context_team_id": T2}) == (two, "E0GRID001")
    assert app.route({"view": {"app_installed_team_id": T2}, "team": {"id": "T0ELSEWHERE"}}) == (
        two,
        "E0GRID001",
    )


def test_an_org_wide_install_is_routed_by_its_enterprise() -> None:
    """``is_enterprise_install``: the authorization names the enterprise and no team."""
    org = _team(0, "E0GRID001")
    org_auth = {
        "authorizations": [{"enterprise_id": "E0GRID001", "team_id": None, "is_enterprise_install": True}]
    }
    assert _app(org).route(org_auth) == (org, "E0GRID001")


def test_unknown_installations_and_teams_still_authenticating() -> None:
    one = _team(0, T1)
    with pytest.raises(FrameError, match="unknown_installation"):
        _app(one).route({"team_id": "T0STRANGER", "enterprise_id": "E0OTHER"})
    starting = Team(1, one.config)  # auth.test has not answered: it may be that one
    with pytest.raises(Pending):
        _app(one, starting).route({"team_id": "T0STRANGER"})


def test_an_event_authorized_for_a_team_we_do_not_serve_is_not_given_to_another_team_of_its_org() -> None:
    """What the simulator sends for Team Two's installation (its ``authorizations`` name Team Two,
    not an org-wide install) must not be handled with Team One's token just because both teams
    are in one enterprise: the enterprise fallback is for ``is_enterprise_install`` only."""
    one = _team(0, T1)
    for_two = {
        "team_id": T2,
        "enterprise_id": "E0GRID001",
        "authorizations": [{"enterprise_id": "E0GRID001", "team_id": T2, "is_enterprise_install": False}],
    }
    with pytest.raises(FrameError, match="unknown_installation"):
        _app(one).route(for_two)
