"""Config reload (SIGHUP): teams come and go; the others keep their sockets; bad files are refused."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from gridtest import SHARED, T1, T2, USERS, connected, settled, wait_until
from ops.opshelp import write_config
from structlog.testing import capture_logs

from gridbot.config import TeamConfig, load
from gridbot.reload import Reloader, plan
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for, to_toml

PRIVATE = "G0TWOPRIV"  # T2's own private channel


def connects(sim: GridSimulator, team: str) -> int:
    return sum(1 for c in sim.calls_to("rtm.connect") if c.team_id == team)


async def test_reload_adds_and_removes_teams_and_leaves_the_others_connected(
    tmp_path: Path, store_url: str | None, redis_prefix: str
) -> None:
    """With Redis the teams go through ownership leases: a removed one gives its lease up."""
    opts = {"redis_url": store_url, "key_prefix": redis_prefix}
    async with GridSimulator(seed=21) as sim:
        path = write_config(tmp_path / "gridbot.toml", sim, [T1], **opts)
        async with Runtime(load(path)) as rt:
            assert rt.supervisor is not None
            await connected(rt, sim, [T1])
            reloader = Reloader(rt, path)

            write_config(path, sim, [T1, T2], **opts)
            plan = await reloader.reload()
            assert plan is not None and len(plan.add) == 1 and len(plan.unchanged) == 1
            await connected(rt, sim, [T2])
            assert connects(sim, T1) == 1 and sim.socket_count(team=T1) == 1  # T1 untouched
            assert len(rt.config.teams) == 2
            await sim.post_message(user=USERS[T2], channel="G0TWOPRIV", text="echo new team")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T2], 10, "the new team answers")

            write_config(path, sim, [T2], **opts)
            plan = await reloader.reload()
            assert plan is not None and len(plan.remove) == 1
            await wait_until(lambda: sim.socket_count(team=T1) == 0, 10, "T1's socket closed")
            assert [t.team_id for t in rt.supervisor.teams] == [T2]
            assert connects(sim, T2) == 1 and sim.socket_count(team=T2) == 1  # T2 untouched
            assert not await rt.store.alive([T1])  # its lease released: a standby takes over at once

            path.write_text('[[teams]]\ntransport = "carrier_pigeon"\nbot_token = "xoxb-nope"\n')
            with capture_logs() as logs:
                assert await reloader.reload() is None
            rejected = next(e for e in logs if e["event"] == "config.reload_rejected")
            assert any(p.startswith("teams[0].transport") for p in rejected["problems"])
            assert [t.team_id for t in rt.supervisor.teams] == [T2] and len(rt.config.teams) == 1
            assert connects(sim, T2) == 1


async def test_sighup_reloads_the_running_daemon(tmp_path: Path) -> None:
    async with GridSimulator(seed=22) as sim:
        path = write_config(tmp_path / "gridbot.toml", sim, [T1])
        log_path = tmp_path / "gridbot.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gridbot.cli", "--log-json", "run", "--config", str(path),
                stdout=log, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        try:
            await wait_until(lambda: sim.socket_count(team=T1) == 1, 20, "the daemon connected")
            write_config(path, sim, [T1, T2])
            proc.send_signal(signal.SIGHUP)
            await wait_until(lambda: sim.socket_count(team=T2) == 1, 20, "T2 connected after SIGHUP")
            await sim.post_message(user=USERS[T1], channel=SHARED, text="echo still here")
            await wait_until(lambda: len(sim.posted) == 1, 10, "a reply after the reload")
            assert connects(sim, T1) == 1  # T1's socket lived through the reload
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
            assert '"config.reloaded"' in log_path.read_text()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _sm(bot: str, app: str = "xapp-1-A-1-aaa", connections: int = 1, name: str = "") -> TeamConfig:
    return TeamConfig("socket_mode", Secret(bot), Secret(app), connections, name)


def test_plan_keeps_an_app_token_running_when_it_only_gains_teams_and_restarts_it_otherwise() -> None:
    one, two = _sm("xoxb-1-one"), _sm("xoxb-2-two")
    gained = plan((one,), (_sm("xoxb-1-one", name="renamed"), two))
    assert gained.unchanged == [] and gained.restart == [] and gained.add == [(two, 1)]
    lost = plan((one, two), (two,))
    assert len(lost.restart) == 1 and lost.add == [(two, 0)]
    more_sockets = plan((one,), (_sm("xoxb-1-one", connections=2),))
    assert len(more_sockets.restart) == 1
    same = plan((one, two), (two, one))  # order and labels alone change nothing
    assert (same.remove, same.add, same.restart) == ([], [], [])


async def test_a_restarted_app_connection_stops_only_the_team_that_left(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """T1 and T2 share one Socket Mode app token; the reload drops T1, so that connection is
    restarted (``plan``: it lost a team). T1 left the config: its elections move
    (``team_stopped``). T2's config did not change: it reconnects, and its own conversation's
    election stays T2's, never moved or cleared (it used to be announced as stopped too, so every
    election it answered in was cleared with ``team_stopped``)."""
    opts: dict[str, Any] = {"redis_url": redis_url, "key_prefix": redis_prefix}
    async with GridSimulator(seed=23) as sim:
        path = tmp_path / "gridbot.toml"
        path.write_text(to_toml(config_for(sim, {T1: "socket_mode", T2: "socket_mode"}, **opts)))
        async with Runtime(load(path)) as rt:
            assert rt.supervisor is not None and rt.elector is not None
            await connected(rt, sim, [T1, T2], 20)
            await sim.post_message(user=USERS[T2], channel=PRIVATE, text="echo mine")
            await wait_until(lambda: [p.team_id for p in sim.posted] == [T2], 10, "T2 answers")
            path.write_text(to_toml(config_for(sim, {T2: "socket_mode"}, **opts)))
            with capture_logs() as logs:
                changes = await Reloader(rt, path).reload()
                assert changes is not None and len(changes.restart) == 1
                await connected(rt, sim, [T2], 20)
                await sim.post_message(user=USERS[T2], channel=PRIVATE, text="echo marker")
                await wait_until(lambda: len(sim.posted) == 2, 10, "the marker answered")
                await settled(rt, 5)
            assert [p.team_id for p in sim.posted] == [T2, T2]
            election = await rt.store.election(PRIVATE)
            assert election is not None and (election.team, election.reason) == (T2, "elected")
            stopped = [e for e in logs if e["event"] == "election.moved" and e.get("channel") == PRIVATE]
            assert stopped == []
