"""`gridbot simulate` as a process: prints the org, writes a usable config, stops on a signal."""

from __future__ import annotations

import asyncio
import signal
import sys
import tomllib
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator
from gridbot.testing.cli import config_toml, run_simulate
from gridbot.testing.simulator import topology_from_dict


async def test_simulate_serves_until_sigint_and_writes_a_config(tmp_path: Path) -> None:
    config = tmp_path / "gridbot.toml"
    code = (
        "import sys; from gridbot.testing.cli import run_simulate; "
        f"sys.exit(run_simulate(None, '127.0.0.1', 0, {str(config)!r}))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not output or not output[-1].startswith("serving"):
                line = await proc.stdout.readline()
                assert line, f"simulator exited early: {(await proc.communicate())[1].decode()}"
                output.append(line.decode().rstrip())
        text = "\n".join(output)
        assert "xoxb-sim-T0TEAM001" in text and "xapp-sim-A0GRIDBOT1" in text
        assert "C0SHARED1" in text and "T0TEAM003" in text

        data = tomllib.loads(config.read_text())
        api_url = data["slack"]["api_url"]
        assert f"API URL: {api_url}" in output
        assert [t["transport"] for t in data["teams"]] == ["socket_mode", "socket_mode"]
        assert {t["bot_token"] for t in data["teams"]} == {"xoxb-sim-T0TEAM001", "xoxb-sim-T0TEAM002"}
        assert {t["app_token"] for t in data["teams"]} == {"xapp-sim-A0GRIDBOT1"}
        assert data["plugins"]["enabled"] == ["echo"]
        assert config.stat().st_mode & 0o077 == 0
        # the printed URL really serves the org
        resp = await AsyncWebClient(token=data["teams"][0]["bot_token"], base_url=api_url).auth_test()
        assert resp["enterprise_id"] == "E0GRID001"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            await proc.wait()
    assert proc.returncode == 0


async def test_config_uses_rtm_for_apps_without_an_app_token(tmp_path: Path) -> None:
    topo = topology_from_dict(
        {
            "enterprise": {"id": "E0X", "name": "X"},
            "teams": [{"id": "T0A", "name": "A", "domain": "a"}, {"id": "T0B", "name": "B", "domain": "b"}],
            "apps": [
                {
                    "id": "A0CLASSIC",
                    "name": "classic",
                    "installations": [
                        {"team": "T0A", "bot_token": "xoxb-sim-a", "bot_user_id": "U0A", "bot_id": "B0A"},
                        {"team": "T0B", "bot_token": "xoxb-sim-b", "bot_user_id": "U0B", "bot_id": "B0B"},
                    ],
                }
            ],
        }
    )
    async with GridSimulator(topo) as sim:
        data = tomllib.loads(config_toml(sim))
        assert data["slack"]["api_url"] == sim.api_url
        assert data["teams"] == [
            {"name": "A / classic", "transport": "rtm", "bot_token": "xoxb-sim-a"},
            {"name": "B / classic", "transport": "rtm", "bot_token": "xoxb-sim-b"},
        ]
        rtm_everywhere = tomllib.loads(config_toml(sim, "rtm"))
        assert {t["transport"] for t in rtm_everywhere["teams"]} == {"rtm"}
        with pytest.raises(ValueError, match="no app_token"):
            config_toml(sim, "socket_mode")


def test_a_bad_topology_file_fails_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[enterprise]\nid = "E0X"\n[[teams]]\nid = "T0A"\n[[teams]]\nid = "T0A"\n')
    with pytest.raises(ValueError, match=r"bad.toml: teams: duplicate id 'T0A'"):
        run_simulate(str(bad), "127.0.0.1", 0, None)
