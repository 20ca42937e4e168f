"""The OAuth v2 install flow against the fake Slack (platform-2026.md, "OAuth and token rotation":
authorize link with client_id, scope, user_scope, state, redirect_uri; redirect with code and
state; ``oauth.v2.access``; "Org-ready apps": an org-wide answer has ``team`` null)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from gridtest import log_lines, serving
from installs.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack
from rediskit import REDIS_URL, require_redis

from gridbot.installs import InstallStore, MemoryInstallStore, RedisInstallStore
from gridbot.installs.oauth import InstallFlow, MemoryStates, OAuthSettings, RedisStates, States
from gridbot.installs.rotation import oauth_client
from gridbot.secrets import Secret

REDIRECT = "https://bot.example.com/slack/oauth_redirect?from=install&x=1"  # needs encoding


@dataclass
class Site:
    fake: FakeSlack
    url: str
    store: InstallStore
    states: States


@pytest.fixture(params=["memory", "redis"])
async def site(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Site]:
    if request.param == "memory":
        store: InstallStore = MemoryInstallStore()
        states: States = MemoryStates()
    else:
        require_redis()
        store = RedisInstallStore.from_url(REDIS_URL, key_prefix=redis_prefix)
        states = RedisStates.from_url(REDIS_URL, key_prefix=redis_prefix)
    fake = FakeSlack()
    settings = OAuthSettings(
        client_id=CLIENT_ID, client_secret=Secret(CLIENT_SECRET), redirect_uri=REDIRECT,
        scopes=("chat:write", "channels:history"), user_scopes=("search:read",),
    )  # fmt: skip
    async with serving(fake.app()) as slack_url:
        flow = InstallFlow(settings, store, states, client=oauth_client(slack_url + "/api/"))
        app = web.Application()
        flow.add_routes(app)
        async with serving(app) as url:
            yield Site(fake, url, store, states)
    if request.param == "redis":
        from rediskit import delete_prefix

        await delete_prefix(redis_prefix)
        await store.close()
        assert isinstance(states, RedisStates)
        await states.close()


def workspace_answer() -> dict[str, Any]:
    return {
        "ok": True, "app_id": "A1", "access_token": "xoxe.xoxb-1-INSTALLED", "refresh_token": "xoxe-1-INSTALLED",
        "expires_in": 43_200, "token_type": "bot", "scope": "chat:write,channels:history", "bot_user_id": "UB1",
        "team": {"id": "T1", "name": "Team <One>"}, "enterprise": None, "is_enterprise_install": False,
        "authed_user": {"id": "U1", "scope": "search:read", "access_token": "xoxp-1-USER", "token_type": "user"},
    }  # fmt: skip


def org_answer() -> dict[str, Any]:
    return {**workspace_answer(), "team": None, "enterprise": {"id": "E1", "name": "Grid Org"},
            "is_enterprise_install": True, "access_token": "xoxe.xoxb-1-ORG"}  # fmt: skip


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def start(site: Site) -> dict[str, list[str]]:
    """Open the install page; the query of its Add-to-Slack link."""
    status, page = await get(site.url + "/slack/install")
    assert status == 200
    link = re.search(r'href="([^"]+)" id="add-to-slack"', page)
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    assert href.startswith("https://slack.com/oauth/v2/authorize?")
    return parse_qs(urlsplit(href).query)


async def test_the_install_link_carries_what_slack_needs(site: Site) -> None:
    query = await start(site)
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == ["chat:write,channels:history"] and query["user_scope"] == ["search:read"]
    assert query["redirect_uri"] == [REDIRECT]  # encoded once, decoded whole (the SDK does not encode it)
    assert len(query["state"][0]) >= 32
    assert CLIENT_SECRET not in str(query)


async def test_a_workspace_install_is_stored_and_the_installer_told(site: Site) -> None:
    state = (await start(site))["state"][0]
    site.fake.codes["code-1"] = workspace_answer()
    status, page = await get(f"{site.url}/slack/oauth_redirect?code=code-1&state={state}")
    assert status == 200 and "installed in the workspace Team &lt;One&gt; (T1)" in page
    bot = await site.store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == "xoxe.xoxb-1-INSTALLED" and bot.bot_id == "B1"
    assert bot.bot_refresh_token == "xoxe-1-INSTALLED" and bot.bot_token_expires_at is not None
    found = await site.store.async_find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found is not None and found.user_token == "xoxp-1-USER"
    assert "xox" not in page


async def test_an_org_wide_install_is_found_from_any_workspace_of_the_org(site: Site) -> None:
    state = (await start(site))["state"][0]
    site.fake.codes["code-org"] = org_answer()
    status, page = await get(f"{site.url}/slack/oauth_redirect?code=code-org&state={state}")
    assert status == 200 and "org-wide in Grid Org (E1)" in page
    assert await site.store.ids() == ["org:E1"]
    for team in ("T1", "T2"):
        bot = await site.store.async_find_bot(enterprise_id="E1", team_id=team, is_enterprise_install=True)
        assert bot is not None and bot.bot_token == "xoxe.xoxb-1-ORG"


async def test_a_state_is_good_once_and_a_forged_one_never_reaches_slack(site: Site) -> None:
    state = (await start(site))["state"][0]
    site.fake.codes["code-1"] = workspace_answer()
    assert (await get(f"{site.url}/slack/oauth_redirect?code=code-1&state={state}"))[0] == 200
    site.fake.codes["code-2"] = org_answer()
    for forged in (state, "forged-state", ""):
        status, page = await get(f"{site.url}/slack/oauth_redirect?code=code-2&state={forged}")
        assert status == 400 and "expired or was already used" in page and "Start the installation again" in page
    assert site.fake.requests == 1 and await site.store.ids() == ["team:T1"]


async def test_a_state_lapses_after_its_ttl() -> None:
    now = [0.0]
    states = MemoryStates(ttl=600, clock=lambda: now[0])
    fresh, stale = await states.issue(), await states.issue()
    now[0] = 599
    assert await states.consume(fresh)
    now[0] = 601
    assert not await states.consume(stale)


async def test_a_redis_state_carries_its_ttl(redis_url: str, redis_prefix: str) -> None:
    states = RedisStates.from_url(redis_url, key_prefix=redis_prefix, ttl=600)
    await states.issue()
    keys = [k async for k in states._r.scan_iter(match=f"{redis_prefix}:*")]
    assert len(keys) == 1 and 0 < await states._r.pttl(keys[0]) <= 600_000
    await states.close()


async def test_slack_errors_are_told_in_plain_words(site: Site) -> None:
    status, page = await get(f"{site.url}/slack/oauth_redirect?error=access_denied&state=x")
    assert status == 400 and "access_denied" in page and "cancelled" in page
    state = (await start(site))["state"][0]
    with log_lines("info") as stream:
        status, page = await get(f"{site.url}/slack/oauth_redirect?code=unknown&state={state}")
    assert status == 400 and "Slack refused the install (invalid_code)" in page
    assert "install.oauth_failed" in stream.getvalue() and CLIENT_SECRET not in stream.getvalue()
    assert await site.store.ids() == []
