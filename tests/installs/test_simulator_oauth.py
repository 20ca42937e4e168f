"""The simulator's OAuth v2, held to /work/shared/reference/platform-2026.md, "OAuth and token
rotation": the authorize redirect brings ``code`` and ``state``; ``oauth.v2.access`` takes the
client id + secret and a code (good once); with rotation on it returns ``expires_in`` and a
``refresh_token`` that is single-use; an expired token answers ``token_expired``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.installs.rotation import oauth_client
from gridbot.testing import GridSimulator, RateLimits

APP, T3 = "A0GRIDBOT1", "T0TEAM003"
REDIRECT = "https://bot.example.com/slack/oauth_redirect"


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(time_scale=100, rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def authorize(sim: GridSimulator, client_id: str, **extra: str) -> tuple[int, dict[str, list[str]]]:
    url = sim.api_url.replace("/api/", "/oauth/v2/authorize")
    query = {
        "client_id": client_id,
        "scope": "chat:write",
        "state": "st4te",
        "redirect_uri": REDIRECT,
        **extra,
    }
    async with aiohttp.ClientSession() as browser:
        async with browser.get(url, params=query, allow_redirects=False) as answer:
            location = answer.headers.get("Location", "")
            return answer.status, parse_qs(urlsplit(location).query)


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as refused:
        await call  # type: ignore[misc]
    return str(refused.value.response["error"])


async def test_the_authorize_redirect_brings_a_code_good_once(sim: GridSimulator) -> None:
    client = sim.oauth.register(APP)
    assert (await authorize(sim, "9.unknown"))[0] == 400
    status, back = await authorize(sim, client.client_id, team=T3)
    assert status == 302 and back["state"] == ["st4te"] and "code" in back
    slack = oauth_client(sim.api_url)
    code = back["code"][0]
    wrong = slack.oauth_v2_access(client_id=client.client_id, client_secret="nope", code=code)
    assert await error_of(wrong) == "bad_client_secret"
    answer = await slack.oauth_v2_access(
        client_id=client.client_id, client_secret=client.client_secret, code=code, redirect_uri=REDIRECT
    )
    assert answer["team"]["id"] == T3 and answer["is_enterprise_install"] is False
    assert "refresh_token" not in answer.data and "expires_in" not in answer.data  # rotation off
    again = slack.oauth_v2_access(client_id=client.client_id, client_secret=client.client_secret, code=code)
    assert await error_of(again) == "invalid_code"
    bot = AsyncWebClient(token=answer["access_token"], base_url=sim.api_url)
    assert (await bot.auth_test())["team_id"] == T3

    sim.oauth.decline = True
    assert (await authorize(sim, client.client_id, team=T3))[1].get("error") == ["access_denied"]


async def test_refresh_tokens_are_single_use_and_tokens_expire(sim: GridSimulator) -> None:
    client = sim.oauth.register(APP, token_rotation=True, expires_in=3600)  # 36 s at time_scale 100
    slack = oauth_client(sim.api_url)
    code = (await authorize(sim, client.client_id, team=T3))[1]["code"][0]
    first = await slack.oauth_v2_access(
        client_id=client.client_id, client_secret=client.client_secret, code=code
    )
    assert first["expires_in"] == 3600 and first["refresh_token"]
    creds = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "grant_type": "refresh_token",
    }
    second = await slack.oauth_v2_access(**creds, refresh_token=first["refresh_token"])
    assert second["access_token"] != first["access_token"]
    spent_again = slack.oauth_v2_access(**creds, refresh_token=first["refresh_token"])
    assert await error_of(spent_again) == "invalid_refresh_token"
    # the replaced token works until its own expiry, as the new one does
    old = AsyncWebClient(token=first["access_token"], base_url=sim.api_url)
    assert (await old.auth_test())["team_id"] == T3
    sim.oauth.expire(first["access_token"])  # its 12 hours are up
    assert await error_of(old.auth_test()) == "token_expired"
    new = AsyncWebClient(token=second["access_token"], base_url=sim.api_url)
    assert (await new.auth_test())["team_id"] == T3

    await sim.uninstall(APP, T3)
    assert await error_of(new.auth_test()) == "token_revoked"
    assert await error_of(old.auth_test()) == "token_revoked"  # earlier tokens die with the install
