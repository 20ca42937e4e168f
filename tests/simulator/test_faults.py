"""Faults a resilient client must survive, each observed through real clients."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from simulator.sim_helpers import ALICE, APP, APP_TOKEN, BOT1, BOT2, SHARED, T1, T2, WsClient, message_from
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator

Connect = Callable[[str], Awaitable[WsClient]]
Web = Callable[[str], AsyncWebClient]


async def test_drop_cuts_the_teams_sockets_without_goodbye(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    assert sim.connected_teams() == {T1, T2}
    assert await sim.drop_sockets(team=T1) == 1
    await one.wait_closed()
    assert not one.of_type("goodbye")
    await sim.wait_for(lambda: sim.connected_teams() == {T2})
    assert not two.closed.is_set()
    again = await rtm(BOT1)
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="after reconnect")
    await again.expect(message_from(ts))


async def test_drop_by_app_cuts_socket_mode_and_rtm(
    sim: GridSimulator, rtm: Connect, socket_mode: Callable[..., Awaitable[WsClient]]
) -> None:
    link, one = await socket_mode(), await rtm(BOT1)
    assert await sim.drop_sockets(app=APP) == 2
    await link.wait_closed()
    await one.wait_closed()
    await sim.wait_for(lambda: sim.socket_count() == 0)


async def test_goodbye_then_the_server_closes(sim: GridSimulator, rtm: Connect) -> None:
    one = await rtm(BOT1)
    await sim.send_goodbye(T1)
    await one.expect(lambda f: f["type"] == "goodbye")
    await one.wait_closed()
    await sim.wait_for(lambda: sim.socket_count(team=T1) == 0)


async def test_rtm_connect_ratelimited_with_retry_after(sim: GridSimulator, web: Web) -> None:
    sim.fail_connect(T1, retry_after=7, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as e:
            await web(BOT1).rtm_connect()
        assert e.value.response.status_code == 429
        assert e.value.response.headers["Retry-After"] == "7"
        assert e.value.response["error"] == "ratelimited"
    assert (await web(BOT1).rtm_connect())["ok"]
    assert (await web(BOT2).rtm_connect())["ok"]
    assert [c.status for c in sim.calls_to("rtm.connect")] == [429, 429, 200, 200]


async def test_connect_faults_until_cleared_and_for_apps(sim: GridSimulator, web: Web) -> None:
    sim.fail_connect(APP, error="internal_error", status=500, retry_after=None)
    for _ in range(5):  # Slack's own refusals: they spend no Tier 1 budget
        with pytest.raises(SlackApiError) as e:
            await web(APP_TOKEN).apps_connections_open(app_token=APP_TOKEN)
        assert e.value.response.status_code == 500
        assert "Retry-After" not in e.value.response.headers
    sim.clear_faults()
    assert (await web(APP_TOKEN).apps_connections_open(app_token=APP_TOKEN))["ok"]


async def test_revoked_token_closes_its_socket_and_cannot_reconnect(
    sim: GridSimulator, rtm: Connect, web: Web
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    await sim.revoke_token(BOT1)
    await one.wait_closed()
    assert not two.closed.is_set()
    with pytest.raises(SlackApiError) as e:
        await web(BOT1).rtm_connect()
    assert e.value.response["error"] == "token_revoked"


async def test_rtm_url_is_single_use(sim: GridSimulator, web: Web, session: aiohttp.ClientSession) -> None:
    url = (await web(BOT1).rtm_connect())["url"]
    assert url.startswith(f"ws://127.0.0.1:{sim.port}/rtm?ticket=")
    first = WsClient(await session.ws_connect(url))
    await first.expect(lambda f: f["type"] == "hello")
    second = WsClient(await session.ws_connect(url))
    error = await second.expect(lambda f: f["type"] == "error")
    assert error["error"]["msg"] == "Socket URL has expired"
    await second.wait_closed()
    await first.close()


async def test_raw_garbage_binary_and_oversized_frames(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    assert await sim.send_raw("{not json", team=T1) == 1
    await sim.send_raw(b"\x00\xffbinary", team=T1)
    await sim.wait_for(lambda: len(one.raw) == 2)
    assert one.raw == ["{not json", b"\x00\xffbinary"]
    assert two.raw == []
    # larger than aiohttp's default 4 MiB client limit: the client must cope with losing the socket
    await sim.send_raw("x" * (5 * 1024 * 1024), team=T2)
    await two.wait_closed()
    assert not one.closed.is_set()


async def test_latency_for_listed_methods_only(sim: GridSimulator, web: Web) -> None:
    sim.set_latency(0.3, methods=["users.info"])
    start = time.monotonic()
    await web(BOT1).auth_test()
    fast = time.monotonic() - start
    start = time.monotonic()
    await web(BOT1).users_info(user=ALICE)
    slow = time.monotonic() - start
    assert slow >= 0.3 > fast
    sim.set_latency(0.2)
    start = time.monotonic()
    await web(BOT1).auth_test()
    assert time.monotonic() - start >= 0.2


async def test_stalled_team_neither_pongs_nor_receives(sim: GridSimulator, rtm: Connect) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    sim.stall(T1)
    await one.send({"id": 1, "type": "ping"})
    await two.send({"id": 1, "type": "ping"})
    ts = await sim.post_message(user=ALICE, channel=SHARED, text="during stall")
    await two.expect(lambda f: f["type"] == "pong")
    await two.expect(message_from(ts))
    await one.ws.ping(b"are you there")
    pong_waiter = one.expect(lambda f: f["type"] == "pong", within=0.3)
    with pytest.raises(AssertionError):
        await pong_waiter
    assert not [f for f in one.frames if f.get("ts") == ts]
    assert not one.closed.is_set()  # stalled, not closed: only a watchdog notices

    sim.clear_faults()
    await one.send({"id": 2, "type": "ping"})
    assert (await one.expect(lambda f: f["type"] == "pong"))["reply_to"] == 2


def test_websocket_tickets_expire_after_30_seconds() -> None:
    from gridbot.testing import default_topology
    from gridbot.testing.simulator.state import OrgState

    now = [1000.0]
    state = OrgState(default_topology(), now=lambda: now[0])
    bot = state.topology.bots[0]
    fresh = state.make_ticket("rtm", BOT1, bot=bot)
    stale = state.make_ticket("rtm", BOT1, bot=bot)
    now[0] += 29.0
    assert state.take_ticket(fresh, "rtm") is not None
    assert state.take_ticket(fresh, "rtm") is None  # single use
    now[0] += 2.0
    assert state.take_ticket(stale, "rtm") is None
