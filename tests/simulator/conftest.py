"""Fixtures for the simulator tests: a simulator, real AsyncWebClients, real websockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from simulator.sim_helpers import APP_TOKEN, WsClient
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[GridSimulator]:
    """The default org; parametrize ``sim`` indirectly with a Topology to use another, or with a
    dict of GridSimulator keywords."""
    param = getattr(request, "param", None)
    options: dict[str, Any] = dict(param) if isinstance(param, dict) else {"topology": param}
    async with GridSimulator(**{"seed": 1, "ack_timeout": 0.3, "close_delay": 0.2, **options}) as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def web(sim: GridSimulator, session: aiohttp.ClientSession) -> Callable[[str], AsyncWebClient]:
    def make(token: str) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=sim.api_url, session=session)

    return make


@pytest.fixture
async def rtm(
    web: Callable[[str], AsyncWebClient], session: aiohttp.ClientSession
) -> AsyncIterator[Callable[[str], Awaitable[WsClient]]]:
    """Connect an RTM socket the way a client does: rtm.connect, then the URL, then hello."""
    clients: list[WsClient] = []

    async def connect(token: str) -> WsClient:
        resp = await web(token).rtm_connect()
        client = WsClient(await session.ws_connect(resp["url"]))
        clients.append(client)
        await client.expect(lambda f: f.get("type") == "hello")
        return client

    yield connect
    for c in clients:
        await c.close()


@pytest.fixture
async def socket_mode(
    web: Callable[[str], AsyncWebClient], session: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Awaitable[WsClient]]]:
    """Open a Socket Mode socket: apps.connections.open, then the URL (hello not awaited)."""
    clients: list[WsClient] = []

    async def connect(token: str = APP_TOKEN, *, hello: bool = True) -> WsClient:
        resp = await web(token).apps_connections_open(app_token=token)
        client = WsClient(await session.ws_connect(resp["url"]))
        clients.append(client)
        if hello:
            await client.expect(lambda f: f.get("type") in ("hello", "disconnect"))
        return client

    yield connect
    for c in clients:
        await c.close()
