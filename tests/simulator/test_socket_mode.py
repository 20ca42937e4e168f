"""Socket Mode: one delivery per app, authorizations, acks, redelivery, socket cap, disconnects."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from simulator.sim_helpers import ALICE, APP, APP_TOKEN, BOB, CAROL, SHARED, T1, T2, T3, WsClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator, default_topology
from gridbot.testing.simulator import Conversation, Installation, RateLimits

Connect = Callable[..., Awaitable[WsClient]]
Web = Callable[[str], AsyncWebClient]


def envelope_for(ts: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "events_api" and f["payload"]["event"].get("ts") == ts


def _two_apps() -> Any:
    """The guide's org, but Team 1 and Team 2 each installed their own app."""
    base = default_topology()
    [app] = base.apps
    one = dataclasses.replace(
        app, id="A0APPONE1", name="one", app_token="xapp-sim-one", installations=app.installations[:1]
    )
    two = dataclasses.replace(
        app, id="A0APPTWO1", name="two", app_token="xapp-sim-two", installations=app.installations[1:]
    )
    return dataclasses.replace(base, apps=(one, two))


TWO_APPS = _two_apps()


async def test_hello_counts_the_apps_connections(socket_mode: Connect) -> None:
    first = await socket_mode()
    second = await socket_mode()
    hello1 = await first.expect(lambda f: f["type"] == "hello")
    hello2 = await second.expect(lambda f: f["type"] == "hello")
    assert (hello1["num_connections"], hello2["num_connections"]) == (1, 2)
    assert hello2["connection_info"] == {"app_id": APP}
    assert hello2["debug_info"]["approximate_connection_time"] == 18060


async def test_shared_channel_message_arrives_once_per_app(sim: GridSimulator, socket_mode: Connect) -> None:
    clients = [await socket_mode() for _ in range(3)]
    ts = await sim.post_message(user=CAROL, channel=SHARED, text="from team 3")
    await sim.wait_for(lambda: any(envelope_for(ts)(f) for c in clients for f in c.frames))
    # a later message proves nothing else was in flight for the first one
    marker = await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await sim.wait_for(lambda: any(envelope_for(marker)(f) for c in clients for f in c.frames))

    assert len([e for e in sim.envelopes_sent if e.payload["event"]["ts"] == ts]) == 1
    got = [f for c in clients for f in c.frames if envelope_for(ts)(f)]
    assert len(got) == 1
    payload = got[0]["payload"]
    assert payload["team_id"] == T3  # the source team
    assert payload["enterprise_id"] == "E0GRID001"
    assert payload["api_app_id"] == APP
    assert payload["type"] == "event_callback"
    assert payload["event_id"].startswith("Ev")
    assert payload["event"]["source_team"] == T3
    assert payload["event"]["user_profile"]["team"] == T3
    [auth] = payload["authorizations"]
    assert auth["team_id"] in (T1, T2)
    assert auth["user_id"] == {T1: "U0BOT0001", T2: "U0BOT0002"}[auth["team_id"]]
    assert (auth["enterprise_id"], auth["is_bot"], auth["is_enterprise_install"]) == (
        "E0GRID001",
        True,
        False,
    )
    assert got[0]["retry_attempt"] == 0 and got[0]["retry_reason"] == ""
    assert got[0]["accepts_response_payload"] is False


async def test_authorization_varies_between_the_apps_installations(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    client = await socket_mode()
    for n in range(12):
        await sim.post_message(user=ALICE, channel=SHARED, text=f"m{n}")
    await sim.wait_for(lambda: len(client.of_type("events_api")) == 12)
    teams = {f["payload"]["authorizations"][0]["team_id"] for f in client.of_type("events_api")}
    assert teams == {T1, T2}


async def test_event_is_seen_by_the_authorized_team(sim: GridSimulator, socket_mode: Connect) -> None:
    client = await socket_mode()
    for n in range(12):
        await sim.post_message(user=BOB, channel=SHARED, text=f"m{n}")
    await sim.wait_for(lambda: len(client.of_type("events_api")) == 12)
    for env in client.of_type("events_api"):
        authorized = env["payload"]["authorizations"][0]["team_id"]
        assert env["payload"]["event"]["user"] == ("U0BOB0001" if authorized == T2 else BOB)


@pytest.mark.parametrize("sim", [TWO_APPS], indirect=True)
async def test_separate_apps_each_get_their_own_copy(sim: GridSimulator, socket_mode: Connect) -> None:
    one, two = await socket_mode("xapp-sim-one"), await socket_mode("xapp-sim-two")
    ts = await sim.post_message(user=CAROL, channel=SHARED, text="hello")
    e1, e2 = await one.expect(envelope_for(ts)), await two.expect(envelope_for(ts))
    assert e1["payload"]["api_app_id"] == "A0APPONE1"
    assert e2["payload"]["api_app_id"] == "A0APPTWO1"
    assert e1["payload"]["authorizations"][0]["team_id"] == T1
    assert e2["payload"]["authorizations"][0]["team_id"] == T2
    assert e1["payload"]["event_id"] != e2["payload"]["event_id"]


async def test_acked_envelopes_are_not_redelivered(sim: GridSimulator, socket_mode: Connect) -> None:
    client = await socket_mode()
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="ack me")
    env = await client.expect(envelope_for(ts))
    await client.send({"envelope_id": env["envelope_id"]})
    await sim.wait_for(lambda: len(sim.acks) == 1)
    ack = sim.acks[0]
    assert (ack.envelope_id, ack.event_id, ack.app_id) == (
        env["envelope_id"],
        env["payload"]["event_id"],
        APP,
    )
    # an unacked message posted later is retried after ack_timeout; by then the acked one
    # would have been retried too
    later = await sim.post_message(user=ALICE, channel=SHARED, text="left unacked")
    await client.expect(lambda f: envelope_for(later)(f) and f["retry_attempt"] == 1)
    assert len([f for f in client.frames if envelope_for(ts)(f)]) == 1


async def test_unacked_envelope_is_redelivered_with_the_same_event_id(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    clients = [await socket_mode(), await socket_mode()]
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="nobody acks")
    # the first try and 3 retries, 0.3 s apart
    await sim.wait_for(lambda: sum(len(c.of_type("events_api")) for c in clients) == 4, timeout=3.0)
    sent = sorted(sim.envelopes_sent, key=lambda e: e.retry_attempt)
    assert [e.retry_attempt for e in sent] == [0, 1, 2, 3]
    assert len({e.event_id for e in sent}) == 1
    assert len({e.envelope_id for e in sent}) == 4
    frames = sorted(
        (f for c in clients for f in c.frames if envelope_for(ts)(f)), key=lambda f: f["retry_attempt"]
    )
    assert [f["retry_reason"] for f in frames] == ["", "timeout", "timeout", "timeout"]
    assert all(f["payload"] == frames[0]["payload"] for f in frames)


async def test_an_ack_counts_only_on_the_socket_that_carried_the_envelope(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    """slack-protocol-notes.md C: the ack goes back "on the same socket"; otherwise the envelope
    is redelivered."""
    clients = [await socket_mode(), await socket_mode()]

    def frames_of(ts: str, attempt: int) -> list[dict[str, Any]]:
        return [f for c in clients for f in c.frames if envelope_for(ts)(f) and f["retry_attempt"] == attempt]

    def carrier_of(envelope_id: str) -> WsClient:
        return next(c for c in clients if any(f.get("envelope_id") == envelope_id for f in c.frames))

    ts = await sim.post_message(user=ALICE, channel=SHARED, text="which socket?")
    await sim.wait_for(lambda: frames_of(ts, 0))
    [first] = frames_of(ts, 0)
    other = next(c for c in clients if c is not carrier_of(first["envelope_id"]))
    await other.send({"envelope_id": first["envelope_id"]})
    await sim.wait_for(lambda: len(sim.acks) == 1)
    assert sim.acks[0].counted is False
    await sim.wait_for(lambda: frames_of(ts, 1))  # not counted: redelivered
    [retry] = frames_of(ts, 1)
    await carrier_of(retry["envelope_id"]).send({"envelope_id": retry["envelope_id"]})
    await sim.wait_for(lambda: len(sim.acks) == 2)
    assert sim.acks[1].counted is True and sim.acks[1].event_id == first["payload"]["event_id"]
    # an unacked marker posted after it is retried after ack_timeout, by when a third try would be out
    marker = await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await sim.wait_for(lambda: frames_of(marker, 1))
    assert not frames_of(ts, 2)


async def test_warning_is_followed_by_the_close_about_10_s_later() -> None:
    """slack-protocol-notes.md C: ``warning``: "the socket will close in about 10 s"."""
    async with GridSimulator(ack_timeout=0.3, time_scale=20) as fast, aiohttp.ClientSession() as session:
        url = (
            await AsyncWebClient(token=APP_TOKEN, base_url=fast.api_url).apps_connections_open(
                app_token=APP_TOKEN
            )
        )["url"]
        client = WsClient(await session.ws_connect(url))
        await client.expect(lambda f: f["type"] == "hello")
        start = time.monotonic()
        await fast.send_disconnect(APP, "warning")
        await client.expect(lambda f: f["type"] == "disconnect" and f["reason"] == "warning")
        ts = await fast.post_message(user=ALICE, channel=SHARED, text="still open after the warning")
        await client.expect(envelope_for(ts))
        await client.wait_closed()
        assert 0.45 <= time.monotonic() - start < 2.0  # 10 s at time_scale 20


async def test_revoking_a_team_tells_the_app_and_ends_its_deliveries(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    client = await socket_mode()
    await sim.revoke_token("xoxb-sim-T0TEAM001")
    env = await client.expect(lambda f: f.get("type") == "events_api")
    assert env["payload"]["event"] == {"type": "tokens_revoked", "tokens": {"bot": ["U0BOT0001"]}}
    assert env["payload"]["authorizations"][0]["team_id"] == T1
    await client.send({"envelope_id": env["envelope_id"]})
    lost = await sim.post_message(user=ALICE, channel="C0ONE0001", text="only Team 1's bot is here")
    shared = [await sim.post_message(user=ALICE, channel=SHARED, text=f"s{n}") for n in range(6)]
    for ts in shared:
        got = await client.expect(envelope_for(ts))
        assert got["payload"]["authorizations"][0]["team_id"] == T2  # never the revoked install
    assert not [f for f in client.frames if envelope_for(lost)(f)]


async def test_an_envelope_for_a_revoked_installation_is_not_redelivered(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    client = await socket_mode()
    ts = await sim.post_message(user=ALICE, channel="C0ONE0001", text="unacked")
    await client.expect(envelope_for(ts))
    await sim.revoke_token("xoxb-sim-T0TEAM001")
    marker = await sim.post_message(user=BOB, channel="G0TWOPRIV", text="marker")
    await client.expect(lambda f: envelope_for(marker)(f) and f["retry_attempt"] == 1)
    assert [f["retry_attempt"] for f in client.frames if envelope_for(ts)(f)] == [0]


async def test_uninstalling_sends_app_uninstalled_and_tokens_revoked(
    sim: GridSimulator, socket_mode: Connect, web: Web
) -> None:
    client = await socket_mode()
    await sim.uninstall(APP, T1)
    await sim.wait_for(lambda: len(client.of_type("events_api")) == 2)
    kinds = [
        (f["payload"]["event"]["type"], f["payload"]["authorizations"][0]["team_id"])
        for f in client.frames
        if f.get("type") == "events_api"
    ]
    assert kinds == [("app_uninstalled", T1), ("tokens_revoked", T1)]
    with pytest.raises(SlackApiError) as e:
        await web("xoxb-sim-T0TEAM001").auth_test()
    assert e.value.response["error"] == "token_revoked"


async def test_app_uninstalled_reaches_an_app_whose_socket_was_down_when_it_happened(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    """The events that say an installation went are retried like any other (notes A: Events API
    events, sent when it happens), although its other events stop: otherwise a process whose
    socket was being replaced would never learn the team is gone."""
    await sim.uninstall(APP, T1)  # no socket open: nothing taken yet
    client = await socket_mode()
    await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"]["type"] == "app_uninstalled"
    )
    await client.expect(
        lambda f: f.get("type") == "events_api" and f["payload"]["event"]["type"] == "tokens_revoked"
    )
    assert all(f["retry_attempt"] >= 1 for f in client.of_type("events_api"))


async def test_a_reinstall_ends_the_retries_of_the_uninstall_it_overtook(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    """Retrying ``app_uninstalled`` after the app is back would stop the new installation."""
    await sim.uninstall(APP, T1)  # no socket open: the events wait for their retry
    await sim.org.install(APP, Installation(T1, "xoxb-sim-T0TEAM001-b", "U0BOT0001", "B0BOT0001"))
    client = await socket_mode()
    marker = await sim.post_message(user=ALICE, channel="C0ONE0001", text="marker")
    # the marker's own retry (this client does not ack) comes after any retry due before it
    await client.expect(lambda f: envelope_for(marker)(f) and f["retry_attempt"] == 1)
    kinds = {f["payload"]["event"]["type"] for f in client.of_type("events_api")}
    assert not kinds & {"app_uninstalled", "tokens_revoked"}


@pytest.mark.parametrize("sim", [{"rate_limits": RateLimits(enabled=False)}], indirect=True)
async def test_the_eleventh_socket_is_told_too_many_websockets(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    for _ in range(10):
        await socket_mode()
    eleventh = await socket_mode()
    frame = await eleventh.expect(lambda f: f["type"] == "disconnect")
    assert frame["reason"] == "too_many_websockets"
    await eleventh.wait_closed()
    assert sim.socket_count(app=APP) == 10


async def test_disconnect_warning_keeps_the_socket(sim: GridSimulator, socket_mode: Connect) -> None:
    client = await socket_mode()
    await sim.send_disconnect(APP, "warning")
    assert (await client.expect(lambda f: f["type"] == "disconnect"))["reason"] == "warning"
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="still here")
    await client.expect(envelope_for(ts))


async def test_refresh_requested_leaves_time_to_open_a_replacement(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    old = await socket_mode()
    await sim.send_disconnect(APP, "refresh_requested")
    assert (await old.expect(lambda f: f["type"] == "disconnect"))["reason"] == "refresh_requested"
    new = await socket_mode()
    assert not old.closed.is_set()
    assert sim.socket_count(app=APP) == 2
    await old.wait_closed()
    await sim.wait_for(lambda: sim.socket_count(app=APP) == 1)
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="on the new socket")
    await new.expect(envelope_for(ts))


async def test_link_disabled_closes_and_blocks_reconnects(
    sim: GridSimulator, socket_mode: Connect, web: Web
) -> None:
    client = await socket_mode()
    await sim.send_disconnect(APP, "link_disabled")
    assert (await client.expect(lambda f: f["type"] == "disconnect"))["reason"] == "link_disabled"
    await client.wait_closed()
    with pytest.raises(SlackApiError) as e:
        await web(APP_TOKEN).apps_connections_open(app_token=APP_TOKEN)
    assert e.value.response["error"] == "link_disabled"
    sim.clear_faults()
    assert (await web(APP_TOKEN).apps_connections_open(app_token=APP_TOKEN))["ok"]


async def test_disconnect_too_many_websockets_on_demand(sim: GridSimulator, socket_mode: Connect) -> None:
    client = await socket_mode()
    await sim.send_disconnect(APP, "too_many_websockets")
    assert (await client.expect(lambda f: f["type"] == "disconnect"))["reason"] == "too_many_websockets"
    await client.wait_closed()


async def test_connections_open_needs_an_app_token_and_urls_are_single_use(
    sim: GridSimulator, web: Web, session: Any
) -> None:
    with pytest.raises(SlackApiError) as e:
        await web("xoxb-sim-T0TEAM001").apps_connections_open(app_token="xoxb-sim-T0TEAM001")
    assert e.value.response["error"] == "not_allowed_token_type"
    url = (await web(APP_TOKEN).apps_connections_open(app_token=APP_TOKEN))["url"]
    assert url.startswith(f"ws://127.0.0.1:{sim.port}/link/?ticket=") and url.endswith(f"&app_id={APP}")
    first = WsClient(await session.ws_connect(url))
    await first.expect(lambda f: f["type"] == "hello")
    reused = WsClient(await session.ws_connect(url))
    await reused.wait_closed()
    assert not reused.frames
    await first.close()


async def test_send_event_reaches_apps_installed_on_the_team(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    client = await socket_mode()
    await sim.send_event({"type": "app_requested", "app_request": {"id": "Ar0REQ0001"}}, team=T2)
    env = await client.expect(lambda f: f.get("type") == "events_api")
    assert env["payload"]["event"]["type"] == "app_requested"
    assert env["payload"]["team_id"] == T2
    assert env["payload"]["authorizations"][0]["team_id"] == T2
    await sim.send_event({"type": "team_join", "user": {"id": "W0NEW0001"}}, team=T3)  # no app on T3
    marker = await sim.post_message(user=ALICE, channel=SHARED, text="marker")
    await client.expect(envelope_for(marker))
    assert not [f for f in client.of_type("events_api") if f["payload"]["event"]["type"] == "team_join"]


QUIET = Conversation(
    id="C0QUIET01", name="quiet", kind="channel", teams=(T1, T2), host_team=T1, members=(ALICE,)
)
WITH_QUIET = dataclasses.replace(default_topology(), conversations=(*default_topology().conversations, QUIET))


@pytest.mark.parametrize("sim", [WITH_QUIET], indirect=True)
async def test_bot_added_arrives_as_member_joined_channel_not_channel_joined(
    sim: GridSimulator, socket_mode: Connect
) -> None:
    client = await socket_mode()
    await sim.add_bot_to_channel(T1, "C0QUIET01")
    await sim.wait_for(lambda: len(client.of_type("events_api")) == 2)
    events = [f["payload"]["event"] for f in client.of_type("events_api")]
    assert [(e["type"], e.get("subtype"), e["user"]) for e in events] == [
        ("member_joined_channel", None, "U0BOT0001"),
        ("message", "channel_join", "U0BOT0001"),
    ]
