"""Helpers for the operations tests: HTTP probes and Prometheus text, read as a scraper would."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gridbot.config import HttpConfig, replace
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for, to_toml


def with_http(config: Any) -> Any:
    """``config`` with the operations endpoint on a free port of 127.0.0.1."""
    return replace(config, http=HttpConfig(port=0))


async def get(port: int, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of every sample called ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def every_secret(sim: GridSimulator) -> list[str]:
    """Every token of the simulated org: bot, app-level and user tokens."""
    topo = sim.topology
    found = {inst.bot_token for app in topo.apps for inst in app.installations}
    found |= {app.app_token for app in topo.apps if app.app_token}
    found |= {user.user_token for user in topo.users if user.user_token}
    return sorted(found)


def assert_no_secret(text: str, sim: GridSimulator) -> None:
    leaked = [t[:9] + "..." for t in every_secret(sim) if t in text]
    assert not leaked, f"tokens leaked: {leaked}"
    assert "xoxb-" not in text and "xapp-" not in text and "xoxp-" not in text


def write_config(
    path: Path,
    sim: GridSimulator,
    teams: list[str],
    *,
    redis_url: str | None = None,
    key_prefix: str = "gridbot",
    http_port: int | None = None,
) -> Path:
    """A config file serving ``teams`` over RTM against ``sim``, with the fast test timings."""
    config = config_for(sim, dict.fromkeys(teams, "rtm"), redis_url=redis_url, key_prefix=key_prefix)
    if http_port is not None:
        config = replace(config, http=HttpConfig(port=http_port))
    path.write_text(to_toml(config))
    path.chmod(0o600)
    return path


async def gridbot_cli(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run the real ``gridbot`` command; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gridbot.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
