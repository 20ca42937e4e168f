"""HTTP teams in the runtime's life: authenticated, connected while the listener is up, seen by
status and metrics, heartbeats like the others; SIGTERM stops accepting and answers what is in
flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import aiohttp
import pytest
from gridtest import SHARED, T1, T2, wait_until
from httpkit import APP, delivery_of, event_callback, http_config, http_runtime, message, subscribe

from gridbot.config import HttpConfig, replace
from gridbot.runtime import Runtime
from gridbot.store import Decision, MemoryStore
from gridbot.testing import GridSimulator


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator() as simulator:
        yield simulator


async def test_http_teams_are_authenticated_connected_and_shown(sim: GridSimulator) -> None:
    config = replace(http_config(sim), http=HttpConfig(port=0))
    async with http_runtime(config) as (rt, url):
        assert rt.http is not None and rt.events is not None
        assert len(sim.calls_to("auth.test")) == 2
        assert await rt.store.alive([T1, T2]) == {T1, T2}  # heartbeats, as for socket teams
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{rt.http.port}/readyz") as answer:
                ready = await answer.json()
            async with http.get(url.replace("/slack/events", "/healthz")) as answer:
                health = (answer.status, await answer.json())
        assert ready["ready"] is True
        assert [(t["team_id"], t["transport"], t["state"]) for t in ready["teams"]] == [
            (T1, "http", "connected"),
            (T2, "http", "connected"),
        ]
        assert health == (200, {"ok": True, "apps": 1, "store_ok": True})
        await subscribe(sim, url)
        await sim.post_message(user="W0ALICE01", channel=SHARED, text="echo hi")
        await wait_until(lambda: len(sim.posted) == 1, 5, "the reply")
        await delivery_of(sim, sim.posted[0].ts)  # the reply, as Slack delivers it to its own app
        text = rt.metrics.render().decode()
        assert 'gridbot_team_state{state="connected",team_id="T0TEAM001"} 1.0' in text
        assert 'gridbot_events_answers_total{reason="handled",status="200"} 1.0' in text
        assert 'gridbot_events_answers_total{reason="own_message",status="200"} 1.0' in text
        assert "gridbot_events_ack_seconds_count 2.0" in text  # the message and the bot's own reply
        received = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("gridbot_events_received_total{") and 'type="message"' in line
        ]
        assert sum(received) == 2.0  # by the team the delivery was authorized for (either)


class GatedStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.asked = asyncio.Event()

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        self.asked.set()
        await self.gate.wait()
        return await super().decide_many(asks)


async def test_stopping_refuses_new_connections_and_answers_those_in_flight(sim: GridSimulator) -> None:
    store = GatedStore()
    rt = Runtime(http_config(sim, events={"ack_timeout": 2.0}), store=store)
    await rt.start()
    stopping: asyncio.Task[None] | None = None
    try:
        assert rt.events is not None and rt.supervisor is not None
        sup = rt.supervisor
        await wait_until(lambda: len(sup.connected()) == 2, 10, "teams connected")
        url = f"http://127.0.0.1:{rt.events.port}/slack/events"
        await subscribe(sim, url)
        said = event_callback(message(SHARED, "W0ALICE01", "echo late", team=T1), team_id=T1)
        delivering = asyncio.create_task(sim.http.deliver(APP, said, retries=False))
        await store.asked.wait()  # the delivery is being decided: in flight
        stopping = asyncio.create_task(rt.stop())
        await wait_until(lambda: not rt.events.listening.is_set(), 5, "the listener stopped")
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as other:
                await other.post(url, data=b"{}")
        store.gate.set()
        delivery = await delivering
        assert delivery.acked and [a.status for a in delivery.attempts] == [200]
        await stopping
        assert [p.text for p in sim.posted] == ["late"]
    finally:
        store.gate.set()
        if stopping is None:
            await rt.stop()
