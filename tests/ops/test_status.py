"""`gridbot status` and `gridbot elections`, run as an operator would, against a live runtime."""

from __future__ import annotations

import json
from pathlib import Path

from gridtest import SHARED, T1, T2, T3, USERS, connected, eventually, wait_until
from ops.opshelp import assert_no_secret, gridbot_cli, write_config

from gridbot.config import load
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator


async def _published(rt: Runtime, team: str, state: str) -> bool | None:
    """True once this process's status document in the store shows ``team`` in ``state``."""
    doc = (await rt.store.statuses()).get(rt.instance_id, {})
    return True if any(t["team_id"] == team and t["state"] == state for t in doc.get("teams", [])) else None


async def test_status_shows_a_revoked_team_stopped_with_its_error_and_the_takeover(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with GridSimulator(seed=11) as sim:
        path = write_config(
            tmp_path / "gridbot.toml", sim, [T1, T2], redis_url=redis_url, key_prefix=redis_prefix
        )
        config = load(path)
        async with Runtime(config) as rt:
            assert rt.supervisor is not None and rt.elector is not None
            await connected(rt, sim, [T1, T2])
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo before")
            await wait_until(lambda: len(sim.posted) == 1, 10, "the first reply")
            assert sim.posted[0].team_id == T1  # the host team answers while it lives

            await sim.revoke_token(config.teams[0].bot_token.get())
            await eventually(lambda: _published(rt, T1, "stopped"), 10)
            # A stopped team gives its heartbeat up and its elections move at once: no TTL to wait.
            await eventually(lambda: _lapsed(rt), 1)
            await wait_until(lambda: rt.elector.moves.get("team_stopped") == 1, 1, "the election moved")
            election = await rt.store.election(SHARED)
            assert election is not None and (election.team, election.reason) == (T2, "team_stopped")
            await sim.post_message(user=USERS[T3], channel=SHARED, text="echo after")
            await wait_until(lambda: len(sim.posted) == 2, 10, "the answer after the move")
            assert sim.posted[1].team_id == T2 and rt.elector.takeovers == 0

            code, out, err = await gridbot_cli("status", "--config", str(path), "--json")
            assert code == 0, err
            data = json.loads(out)
            assert [p["instance"] for p in data["processes"]] == [rt.instance_id]
            teams = {t["team_id"]: t for t in data["processes"][0]["teams"]}
            assert teams[T1]["state"] == "stopped" and teams[T1]["error"] == "token_revoked"
            assert teams[T2]["state"] == "connected" and teams[T2]["heartbeat"] is True
            assert {t["enterprise_id"] for t in teams.values()} == {"E0GRID001"}
            assert {t["transport"] for t in teams.values()} == {"rtm"}
            assert teams[T2]["last_event_at"] is not None
            shared = next(e for e in data["elections"] if e["channel"] == SHARED)
            assert shared["team_id"] == T2 and shared["moved"] is True and shared["epoch"] == 2

            code, table, err = await gridbot_cli("status", "--config", str(path))
            assert code == 0, err
            t1_row = next(line for line in table.splitlines() if line.strip().startswith(T1))
            assert "stopped" in t1_row and "token_revoked" in t1_row
            shared_row = next(line for line in table.splitlines() if line.strip().startswith(SHARED))
            assert T2 in shared_row and "taken over" in shared_row
            assert_no_secret(out + table + err, sim)


async def _lapsed(rt: Runtime) -> bool | None:
    return True if not await rt.store.alive([T1]) else None


async def test_elections_set_pins_the_answering_team_and_clear_forgets_it(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with GridSimulator(seed=12) as sim:
        path = write_config(
            tmp_path / "gridbot.toml", sim, [T1, T2], redis_url=redis_url, key_prefix=redis_prefix
        )
        async with Runtime(load(path)) as rt:
            await connected(rt, sim, [T1, T2])
            code, out, err = await gridbot_cli("elections", "set", "--config", str(path), SHARED, T2)
            assert code == 0, err
            assert f"pinned {SHARED} to {T2}" in out and "warning" not in err
            await sim.post_message(user=USERS[T1], channel=SHARED, text="echo pinned")
            await wait_until(lambda: len(sim.posted) == 1, 10, "the reply")
            assert sim.posted[0].team_id == T2  # not the host team: the pin decides

            code, out, _ = await gridbot_cli("elections", "list", "--config", str(path), "--json")
            rows = json.loads(out)["elections"]
            assert code == 0 and rows == [
                {
                    "channel": SHARED,
                    "team_id": T2,
                    "epoch": 1,
                    "pinned": True,
                    "candidates": [T2],
                    "moved": False,
                }
            ]

            code, out, _ = await gridbot_cli("elections", "clear", "--config", str(path), SHARED)
            assert code == 0 and f"cleared {SHARED}" in out
            await sim.post_message(user=USERS[T1], channel=SHARED, text="echo elected again")
            await wait_until(lambda: len(sim.posted) == 2, 10, "the second reply")
            assert sim.posted[1].team_id == T1  # a fresh election picks the host team again


async def test_elections_reject_ids_that_are_not_ids(tmp_path: Path) -> None:
    path = tmp_path / "gridbot.toml"
    path.write_text("")
    code, _, err = await gridbot_cli("elections", "set", "--config", str(path), "general", T2)
    assert code == 2 and "not a channel id" in err


async def test_status_on_the_in_memory_store_asks_the_daemon_over_http_or_says_why_it_cannot(
    tmp_path: Path,
) -> None:
    async with GridSimulator(seed=13) as sim:
        config = load(write_config(tmp_path / "daemon.toml", sim, [T1], http_port=0))
        async with Runtime(config) as rt:
            assert rt.http is not None
            await connected(rt, sim, [T1])
            no_http = write_config(tmp_path / "no-http.toml", sim, [T1])
            code, _, err = await gridbot_cli("status", "--config", str(no_http))
            assert code == 3 and "in-memory store" in err and "[http] port" in err

            with_http = write_config(tmp_path / "cli.toml", sim, [T1], http_port=rt.http.port)
            code, out, err = await gridbot_cli("status", "--config", str(with_http), "--json")
            assert code == 0, err
            data = json.loads(out)
            assert data["source"] == "http"
            assert [(t["team_id"], t["state"]) for t in data["processes"][0]["teams"]] == [(T1, "connected")]
            assert_no_secret(out, sim)


async def test_status_lists_a_configured_team_no_live_process_serves_as_not_running(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with GridSimulator(seed=14) as sim:
        served = write_config(
            tmp_path / "served.toml", sim, [T1], redis_url=redis_url, key_prefix=redis_prefix
        )
        async with Runtime(load(served)) as rt:
            await connected(rt, sim, [T1])
            await eventually(lambda: _published(rt, T1, "connected"), 10)
            both = write_config(
                tmp_path / "both.toml", sim, [T1, T2], redis_url=redis_url, key_prefix=redis_prefix
            )
            code, out, err = await gridbot_cli("status", "--config", str(both), "--json")
            assert code == 0, err
            data = json.loads(out)
            [row] = data["processes"][0]["teams"]
            assert row["team_id"] == T1 and row["heartbeat"] is True
            [unserved] = data["unserved"]
            assert unserved["config_index"] == 1 and unserved["transport"] == "rtm"
            assert unserved["connection"].startswith("rtm:") and unserved["connection"] != row["connection"]

            code, table, err = await gridbot_cli("status", "--config", str(both))
            assert code == 0, err
            assert "HEARTBEAT" in table
            missing = next(line for line in table.splitlines() if line.strip().startswith("teams[1]"))
            assert "not running" in missing and "no live process serves it" in missing
            assert_no_secret(out + table + err, sim)
