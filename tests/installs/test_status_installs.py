"""``gridbot status`` says where each installation came from and when its token expires, never the
token: a static [[teams]] entry and an OAuth install with rotation on, served side by side."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gridtest import T1, eventually
from installs.livekit import APP, oauth_config, oauth_install

from gridbot.installs import RedisInstallStore
from gridbot.runtime import Runtime
from gridbot.status.render import render
from gridbot.testing import GridSimulator, RateLimits

T3 = "T0TEAM003"


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(rate_limits=RateLimits(enabled=False)) as simulator:
        yield simulator


async def _rows(rt: Runtime) -> dict[str, Any] | None:
    doc = (await rt.store.statuses()).get(rt.instance_id, {})
    teams = {t["team_id"]: t for t in doc.get("teams", []) if t["state"] == "connected"}
    return doc if T1 in teams and T3 in teams else None


async def test_status_shows_each_installations_source_and_token_expiry(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    client = sim.oauth.register(APP, token_rotation=True)  # 12-hour tokens
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    config = oauth_config(sim, client, redis_url, redis_prefix, rotation=True)
    async with Runtime(config) as rt:
        installed = time.time()
        await oauth_install(sim, client, T3, store)
        doc = await eventually(lambda: _rows(rt), 15)
    install = await store.get(f"team:{T3}")
    await store.close()
    assert install is not None and install.refresh_token is not None

    teams = {t["team_id"]: t for t in doc["teams"]}
    assert (teams[T1]["source"], teams[T1]["expires_at"]) == ("config", None)
    assert teams[T3]["source"] == "oauth"
    assert installed + 43_200 - 5 <= teams[T3]["expires_at"] <= time.time() + 43_200
    assert doc["rotation"] == {"spent": 0, "failed": 0, "deferred": 0, "retried": 0}
    [row] = doc["installations"]
    assert (row["id"], row["team_id"], row["org_wide"], row["failed"]) == (f"team:{T3}", T3, False, "")

    text = render({"processes": [doc], "source": "redis"}, now=installed)
    t3_row = next(line for line in text.splitlines() if line.strip().startswith(T3))
    assert "oauth" in t3_row and "in 12.0h" in t3_row
    assert "config" in next(line for line in text.splitlines() if line.strip().startswith(T1))
    assert f"team:{T3}" in text.split("Installations (1)")[1]
    published = json.dumps(doc) + text
    for secret in (install.bot_token.get(), install.refresh_token.get(), client.client_secret):
        assert secret not in published
