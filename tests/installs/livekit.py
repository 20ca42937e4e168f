"""Helpers for the live-installation tests: a config with ``[oauth]`` for the simulator's app, the
installer's browser, and where a team is served."""

from __future__ import annotations

import html
import re
import socket
from urllib.parse import parse_qs, urlsplit

import aiohttp
from gridtest import T1, grid_config
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.config import Config, OAuthConfig, replace
from gridbot.installs import InstallStore
from gridbot.installs.oauth import installation_from
from gridbot.installs.rotation import oauth_client
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.team import TeamState
from gridbot.testing import GridSimulator
from gridbot.testing.simulator.model import Conversation
from gridbot.testing.simulator.oauth import OAuthClient

APP = "A0GRIDBOT1"
T3_ONLY = "C0THREE01"
# An [oauth] table for tests that drive LiveInstalls directly and never reach Slack.
OFFLINE_OAUTH = OAuthConfig(
    client_id="1.2",
    client_secret=Secret("client-secret-for-tests"),
    scopes=("chat:write",),
    redirect_url="https://bot.example.com/slack/oauth_redirect",
    transport="socket_mode",
    app_token=Secret("xapp-1-test-app-token"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def oauth_config(
    sim: GridSimulator,
    client: OAuthClient,
    redis_url: str,
    prefix: str,
    *,
    port: int | None = None,
    rotation: bool = False,
    ahead: float = 7200.0,
    static: bool = True,
) -> Config:
    """T1 static over Socket Mode (unless not ``static``), and the app's OAuth installs on the
    same app token."""
    base = grid_config(sim, {T1: "socket_mode"} if static else {}, redis_url=redis_url, key_prefix=prefix)
    app_token = next(a.app_token for a in sim.topology.apps if a.id == APP)
    assert app_token is not None
    oauth = OAuthConfig(
        client_id=client.client_id,
        client_secret=Secret(client.client_secret),
        scopes=("chat:write", "channels:history"),
        redirect_url=f"http://127.0.0.1:{port or 9}/slack/oauth_redirect",
        transport="socket_mode",
        app_token=Secret(app_token),
        port=port,
        token_rotation=rotation,
        refresh_ahead=ahead,
        watch_interval=0.1,
    )
    return replace(base, oauth=oauth)


async def install_through_browser(port: int) -> str:
    """What an installer does: open the install page, follow Add to Slack; the result page's text."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(f"http://127.0.0.1:{port}/slack/install") as page:
            text = await page.text()
        link = re.search(r'href="([^"]+)" id="add-to-slack"', text)
        assert link is not None, text
        async with browser.get(html.unescape(link.group(1))) as result:
            return await result.text()


async def oauth_install(sim: GridSimulator, client: OAuthClient, team: str, store: InstallStore) -> None:
    """An install without a browser or gridbot's routes: authorize, exchange the code, store it."""
    redirect = "https://bot.example.com/slack/oauth_redirect"
    sim.oauth.next_team = team
    query = {"client_id": client.client_id, "scope": "chat:write", "state": "s", "redirect_uri": redirect}
    async with aiohttp.ClientSession() as browser:
        url = sim.api_url.replace("/api/", "/oauth/v2/authorize")
        async with browser.get(url, params=query, allow_redirects=False) as answer:
            code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    slack = oauth_client(sim.api_url)
    data = await slack.oauth_v2_access(
        client_id=client.client_id, client_secret=client.client_secret, code=code, redirect_uri=redirect
    )
    bot = AsyncWebClient(token=str(data["access_token"]), base_url=sim.api_url)
    who = await bot.auth_test()
    await store.async_save(installation_from(dict(data.data), str(who["bot_id"])))  # type: ignore[arg-type]


def serving(runtimes: list[Runtime], team: str) -> list[str]:
    """The instance ids of the runtimes whose team ``team`` is connected."""
    out = []
    for rt in runtimes:
        assert rt.supervisor is not None
        found = rt.supervisor.team(team)
        if found is not None and found.state == TeamState.CONNECTED and team in rt.supervisor.connected():
            out.append(rt.instance_id)
    return out


async def t3_channel(sim: GridSimulator) -> None:
    """A channel of Team 3 alone, with its (newly installed) bot in it."""
    conv = Conversation(
        id=T3_ONLY,
        kind="channel",
        teams=("T0TEAM003",),
        host_team="T0TEAM003",
        members=("W0CAROL01",),
        bot_teams=("T0TEAM003",),
        name="team-three",
    )
    await sim.org.create_channel(conv)
