"""/healthz, /readyz and /metrics as an orchestrator and a Prometheus scraper see them."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

from gridtest import SHARED, T1, T2, USERS, connected, eventually, grid_config, settled, wait_until
from ops.opshelp import assert_no_secret, get, sample, with_http
from prometheus_client.parser import text_string_to_metric_families

from gridbot import Context, Plugin
from gridbot.config import RedisConfig, TeamConfig, replace
from gridbot.dedup import Counters
from gridbot.dispatch.workers import DispatchCounters
from gridbot.http import readiness
from gridbot.loading import load_plugin
from gridbot.metrics import Metrics
from gridbot.runtime import Runtime
from gridbot.secrets import Secret
from gridbot.status.snapshot import process_document
from gridbot.status.view import RuntimeView
from gridbot.store import MemoryStore
from gridbot.team import TEAM_STATES, Team
from gridbot.testing import GridSimulator


async def test_readyz_flips_while_a_team_is_down_and_back_when_it_returns() -> None:
    async with GridSimulator(seed=3) as sim:
        async with Runtime(with_http(grid_config(sim, {T1: "rtm", T2: "rtm"}))) as rt:
            assert rt.http is not None
            port = rt.http.port
            await connected(rt, sim, [T1, T2])
            status, body = await get(port, "/readyz")
            assert status == 200 and body["ready"] is True
            assert {t["team_id"]: t["state"] for t in body["teams"]} == {T1: "connected", T2: "connected"}
            assert body["store"]["ok"] is True

            sim.fail_connect(T1, error="ratelimited", status=429, retry_after=0.2)
            await sim.drop_sockets(team=T1)

            async def not_ready() -> dict[str, object] | None:
                code, data = await get(port, "/readyz")
                return data if code == 503 else None

            down = await eventually(not_ready, 10)
            states = {t["team_id"]: t["state"] for t in down["teams"]}  # type: ignore[attr-defined]
            assert states[T1] == "reconnecting" and states[T2] == "connected"
            assert any(T1 in reason for reason in down["reasons"])  # type: ignore[attr-defined]
            status, health = await get(port, "/healthz")  # alive all along: only readiness dropped
            assert status == 200 and health["alive"] is True

            sim.clear_faults()

            async def ready() -> bool | None:
                code, _ = await get(port, "/readyz")
                return True if code == 200 else None

            await eventually(ready, 20)
            _, metrics = await get(port, "/metrics")
            assert sample(metrics, "gridbot_webapi_ratelimited_total", method="rtm.connect") >= 1
            assert sample(metrics, "gridbot_socket_reconnects_total", team_id=T1) >= 1
            assert sample(metrics, "gridbot_team_state", team_id=T1, state="connected") == 1


async def test_a_revoked_team_is_a_terminal_state_and_does_not_hold_readiness_back() -> None:
    async with GridSimulator(seed=4) as sim:
        config = with_http(grid_config(sim, {T1: "rtm", T2: "rtm"}))
        async with Runtime(config) as rt:
            assert rt.http is not None and rt.supervisor is not None
            await connected(rt, sim, [T1, T2])
            await sim.revoke_token(config.teams[0].bot_token.get())
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == "stopped", 10, "T1 stopped")
            status, body = await get(rt.http.port, "/readyz")
            assert status == 200, body
            t1 = next(t for t in body["teams"] if t["team_id"] == T1)
            assert t1["state"] == "stopped" and t1["error"] == "token_revoked"
            assert_no_secret(json.dumps(body), sim)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_readyz_says_the_store_is_unreachable() -> None:
    async with GridSimulator() as sim:
        dead_redis = RedisConfig(url=Secret(f"redis://:hunter2pw@127.0.0.1:{_free_port()}/0"))
        config = replace(with_http(grid_config(sim, {})), redis=dead_redis)
        async with Runtime(config) as rt:
            assert rt.http is not None
            status, body = await get(rt.http.port, "/readyz")
            assert status == 503 and body["store"]["ok"] is False
            assert "store unreachable" in body["reasons"]
            assert "hunter2pw" not in json.dumps(body)
            assert (await get(rt.http.port, "/healthz"))[0] == 200


def _failing_plugin() -> Plugin:
    plugin = Plugin("boom")

    @plugin.command("boom")
    async def explode(ctx: Context) -> None:
        raise RuntimeError("kaboom")

    return plugin


async def test_metrics_move_with_the_events_sent() -> None:
    async with GridSimulator(seed=9) as sim:
        config = with_http(grid_config(sim, {T1: "rtm", T2: "rtm"}))
        async with Runtime(config, plugins=[load_plugin("echo"), _failing_plugin()]) as rt:
            assert rt.http is not None
            port = rt.http.port
            await connected(rt, sim, [T1, T2])
            status, before = await get(port, "/metrics")
            assert status == 200
            for n in range(6):
                user = list(USERS.values())[n % 3]
                await sim.post_message(user=user, channel=SHARED, text=f"echo metric{n}")
            await sim.post_message(user=USERS[T1], channel=SHARED, text="!boom")
            await wait_until(lambda: len(sim.posted) >= 6, 15, "six replies")
            await settled(rt)
            _, after = await get(port, "/metrics")

            def delta(name: str, **labels: str) -> float:
                return sample(after, name, **labels) - sample(before, name, **labels)

            # Both teams are in the shared channel: each receives its own copy of all seven.
            assert delta("gridbot_events_received_total", team_id=T1, type="message") >= 7
            assert delta("gridbot_events_received_total", team_id=T2, type="message") >= 7
            assert (
                delta("gridbot_deliveries_total", decision="handled")
                + delta("gridbot_deliveries_total", decision="rescued")
                == 7
            )
            assert delta("gridbot_deliveries_suppressed_total", reason="duplicate") >= 7
            assert delta("gridbot_handler_duration_seconds_count", plugin="echo", outcome="ok") == 6
            assert delta("gridbot_handler_errors_total", plugin="boom", kind="error") == 1
            assert delta("gridbot_webapi_calls_total", method="chat.postMessage", status="200") == 6
            assert sample(after, "gridbot_elections_total") >= 1
            assert sample(after, "gridbot_store_roundtrip_seconds_count") >= 1
            assert_no_secret(after, sim)


def _team_states(metrics: str) -> dict[str, set[str]]:
    """team id -> every state label gridbot_team_state lists for it."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == "gridbot_team_state":
                found.setdefault(s.labels["team_id"], set()).add(s.labels["state"])
    return found


async def test_status_readyz_healthz_and_metrics_show_the_same_teams_in_the_same_states() -> None:
    async with GridSimulator(seed=5) as sim:
        config = with_http(grid_config(sim, {T1: "rtm", T2: "rtm"}))
        async with Runtime(config) as rt:
            assert rt.http is not None and rt.supervisor is not None
            port = rt.http.port
            await connected(rt, sim, [T1, T2])
            await sim.revoke_token(config.teams[0].bot_token.get())
            team1 = rt.supervisor.team(T1)
            assert team1 is not None
            await wait_until(lambda: team1.state == "stopped", 10, "T1 stopped")

            _, status = await get(port, "/status")
            _, ready = await get(port, "/readyz")
            _, health = await get(port, "/healthz")
            _, metrics = await get(port, "/metrics")
            expected = {T1: "stopped", T2: "connected"}
            [document] = status["processes"]
            assert {t["team_id"]: t["state"] for t in document["teams"]} == expected
            assert {t["team_id"]: t["state"] for t in ready["teams"]} == expected
            assert {t["team_id"]: t["state"] for t in health["teams"]} == expected
            for team, state in expected.items():
                assert sample(metrics, "gridbot_team_state", team_id=team, state=state) == 1
                assert sample(metrics, "gridbot_team_state", team_id=team) == 1  # one state at a time
            assert _team_states(metrics) == {T1: set(TEAM_STATES), T2: set(TEAM_STATES)}
            # each RTM team is a connection of its own, named by its connection key
            connections = {t["team_id"]: t["connection"] for t in document["teams"]}
            assert connections[T1] != connections[T2]
            assert all(key.startswith("rtm:") for key in connections.values())
            assert_no_secret(json.dumps([status, ready, health]) + metrics, sim)


@dataclass
class _Link:
    reconnects: int = 0
    frames_dropped: int = 0


@dataclass
class _Connection:
    key: str
    teams: list[Team]
    links: list[_Link] = field(default_factory=lambda: [_Link(reconnects=2, frames_dropped=1)])


@dataclass
class _Decisions:
    counters: Counters = field(default_factory=Counters)
    store_ok: bool = True
    backlog: int = 0


@dataclass
class _Elector:
    elected: int = 0
    takeovers: int = 0
    moves: dict[str, int] = field(default_factory=lambda: {"channel_left": 2})


@dataclass
class _Handlers:
    counters: DispatchCounters = field(default_factory=lambda: DispatchCounters(0, 0, 0, 0))
    running: int = 0


@dataclass
class _Lifecycle:
    started_at: float | None = 1.0
    started: bool = True
    stopping: bool = False


async def test_a_view_of_fakes_is_all_readiness_metrics_and_the_status_document_need() -> None:
    """Every team state, one team in each: readiness waits only for those that may still change."""
    teams = [
        Team(i, TeamConfig("rtm", Secret(f"xoxb-view-{i}")), team_id=f"T0VIEW{i:03}", state=state)
        for i, state in enumerate(TEAM_STATES)
    ]
    view = RuntimeView(
        instance_id="fake:1:abc",
        store=MemoryStore(),
        lifecycle=_Lifecycle(),
        connections=lambda: [_Connection(f"rtm:{t.index}", [t]) for t in teams],
        decisions=_Decisions(),
        elector=_Elector(),
        handlers=_Handlers(),
    )
    metrics = Metrics()
    metrics.collect_runtime(view)

    body = await readiness(view, metrics)
    waiting = {"starting", "connecting", "reconnecting", "paused"}
    assert body["ready"] is False
    assert sorted(body["reasons"]) == sorted(f"{t.team_id}: {t.state}" for t in teams if t.state in waiting)
    settled_states = {t["state"] for t in body["teams"] if t["ready"]}
    assert settled_states == {"connected", "stopped", "disabled", "removed"}

    text = metrics.render().decode()
    for t in teams:
        assert sample(text, "gridbot_team_state", team_id=t.team_id, state=t.state) == 1
        assert sample(text, "gridbot_socket_reconnects_total", team_id=t.team_id) == 2
        assert sample(text, "gridbot_frames_dropped_total", team_id=t.team_id) == 1
    assert _team_states(text) == {t.team_id: set(TEAM_STATES) for t in teams}
    assert sample(text, "gridbot_election_moves_total", reason="channel_left") == 2

    document = process_document(view, http=None)
    assert [(t["team_id"], t["state"], t["connection"]) for t in document["teams"]] == [
        (t.team_id, t.state, f"rtm:{t.index}") for t in teams
    ]
    assert document["store"] == "memory" and document["store_ok"] is True
