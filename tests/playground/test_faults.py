"""The fault buttons, through the playground's API: what each does to the grid, as the page shows it.

Takeover timing follows the README's failover policy: a standby team's copy is handled after
``standby_grace`` (0.5 s in the playground) and the election moves only once the responsible
team's heartbeat has lapsed (``lease_ttl``, 1.5 s).
"""

from __future__ import annotations

import asyncio
import sys

from playground.playkit import ALICE, BOB, SHARED, T1, T2, decisions, running, team

from gridbot.playground.faults import FaultError, FaultPanel
from gridbot.playground.narrate import Names
from gridbot.testing.simulator import GridSimulator


async def test_cutting_the_elected_teams_socket_shows_the_standby_rescue_and_the_takeover() -> None:
    async with running() as api:
        await api.connected(T1, T2)
        await api.say(ALICE, SHARED, "echo before")
        await api.story("echo before", lambda s: s["replies"])

        state = await api.post("/api/faults", {"fault": "cut", "team": T1})
        assert team(state, T1)["faults"]["cut"] is True
        state = await api.until("/api/state", lambda s: team(s, T1)["heartbeat"] is False, what="a lapsed heartbeat")
        assert team(state, T1)["state"] != "connected" and team(state, T1)["sockets"] == 0

        await api.say(BOB, SHARED, "echo after the cut")
        story = await api.story("echo after the cut", lambda s: s["takeover"] and s["replies"])
        assert decisions(story) == {T2: ["standby", "rescued"]}  # Team One has no socket: no copy
        assert story["elected"] == T1 and story["handled_by"] == T2 and story["how"] == "rescued"
        assert story["takeover"] == {"previous": T1, "team": T2}
        assert [(r["team"], r["text"]) for r in story["replies"]] == [(T2, "after the cut")]
        state = await api.until("/api/state", lambda s: s["counters"]["takeovers"], what="the takeover counted")
        assert [(e["channel"], e["team"], e["epoch"]) for e in state["elections"]] == [(SHARED, T2, 2)]
        timeline = await api.timeline()
        assert "#shared-all: takeover, Team One → Team Two (epoch 2)" in timeline
        assert "Team One: heartbeat lapsed (its channels can be taken over)" in timeline

        # reconnect: Team One is back, and the channel keeps its new responsible team
        await api.post("/api/faults", {"fault": "reconnect", "team": T1})
        await api.connected(T1, T2)
        await api.say(ALICE, SHARED, "echo back")
        story = await api.story("echo back", lambda s: s["replies"] and len(s["copies"]) == 2)
        assert decisions(story) == {T1: ["duplicate"], T2: ["handled"]}
        assert story["elected"] == T2


async def test_revoking_a_team_stops_it_for_good_and_the_other_team_answers() -> None:
    async with running() as api:
        await api.connected(T1, T2)
        await api.post("/api/faults", {"fault": "revoke", "team": T2})
        state = await api.until(
            "/api/state", lambda s: team(s, T2)["state"] in ("stopped", "disabled"), what="Team Two stopped"
        )
        assert team(state, T2)["faults"]["revoked"] is True and team(state, T2)["error"] == "token_revoked"
        await api.say(ALICE, SHARED, "echo still one answer")
        story = await api.story("echo still one answer", lambda s: s["replies"])
        assert decisions(story) == {T1: ["handled"]} and story["replies"][0]["team"] == T1
        await api.post("/api/faults", {"fault": "heal"})  # a revoked token stays revoked
        assert team(await api.get("/api/state"), T2)["faults"]["revoked"] is True


class LaggingSimulator(GridSimulator):
    """A stand-in for the simulator's lag fault (issue 15), recording what the panel asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.lags: list[tuple[str, float]] = []

    async def lag(self, team: str, seconds: float) -> None:
        self.lags.append((team, seconds))


async def test_the_lag_button_drives_the_simulators_lag_fault_and_survives_a_reconnect() -> None:
    notes: list[str] = []
    async with LaggingSimulator() as sim:
        panel = FaultPanel(sim, Names(sim.topology), notes.append, lag=sim.lag)
        assert panel.available()["lag"] is True
        await panel.apply("lag", T2, 1.5)
        await panel.apply("cut", T1)
        await panel.apply("reconnect", T1)  # clear_faults() clears every fault: Team Two's lag is put back
        await panel.apply("unlag", T2)
        assert sim.lags == [(T2, 1.5), (T2, 1.5), (T2, 0.0)]
        assert notes[0] == "Team Two: copies delayed by 1.5 s" and notes[-1] == "Team Two: lag removed"
        assert panel.state()["teams"][T2]["lag"] == 0.0

    async with GridSimulator() as plain:  # the simulator without the fault: the button says why
        panel = FaultPanel(plain, Names(plain.topology), notes.append)
        assert panel.available()["lag"] is False and "no lag fault" in panel.available()["lag_note"]
        try:
            await panel.apply("lag", T2)
        except FaultError as exc:
            assert "no lag fault" in str(exc)
        else:
            raise AssertionError("lag applied without a lag fault")


async def test_stopping_redis_buffers_the_message_and_starting_it_answers_it_once(redis_url: str) -> None:
    async with running(redis_url=redis_url) as api:
        org = await api.get("/api/org")
        assert org["store"] == "redis://127.0.0.1:6379/0" and org["faults"]["redis"] is True
        await api.connected(T1, T2)

        state = await api.post("/api/faults", {"fault": "redis_stop"})
        assert state["store"]["stopped"] is True
        await api.say(ALICE, SHARED, "echo through the outage")
        await api.until("/api/state", lambda s: s["store"]["reachable"] is False, what="the store unreachable")
        assert not (await api.story("echo through the outage", lambda s: True))["replies"]

        await api.post("/api/faults", {"fault": "redis_start"})
        story = await api.story("echo through the outage", lambda s: s["replies"] and s["handled_by"], timeout=15)
        assert [r["text"] for r in story["replies"]] == ["through the outage"]
        assert sorted(d for ds in decisions(story).values() for d in ds) == ["duplicate", "handled"]
        timeline = await api.timeline()
        assert any(t.startswith("store unreachable") for t in timeline)
        assert "store reachable again: draining the buffer" in timeline


async def test_a_redis_that_does_not_answer_ends_the_command_in_one_line() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gridbot.cli", "playground", "--port", "0", "--redis", "redis://:hunter22@127.0.0.1:1/0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1, (out, err)
    assert len(lines) == 1 and lines[0].startswith("gridbot playground: cannot use Redis at redis://127.0.0.1:1/0: ")
    assert "hunter22" not in (out + err).decode()
