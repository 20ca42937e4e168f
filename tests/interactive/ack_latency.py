"""How long a user waits for an interaction's ack, simulator to runtime and back, over Socket Mode
and over HTTP (in-memory store, loopback):
``PYTHONPATH=$PWD:$PWD/tests python tests/interactive/ack_latency.py [socket_mode|http ...]``."""

import asyncio
import statistics
import sys

from gridtest import wait_until
from interactive.kit import BUTTONS, HTTP, SOCKET_MODE
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for, subscribe_http

TRANSPORTS = {"socket_mode": SOCKET_MODE, "http": HTTP}


async def measure(transport: str) -> None:
    async with GridSimulator() as sim:
        config = config_for(sim, TRANSPORTS[transport], plugins=("interactive.kit",))  # type: ignore[arg-type]
        async with Runtime(config) as rt:
            await wait_until(lambda: len(rt.supervisor.connected()) == 2, 10)
            await subscribe_http(sim, rt, config)
            c = AsyncWebClient(token="xoxb-sim-T0TEAM001", base_url=sim.api_url)
            await c.chat_postMessage(channel="C0SHARED1", text="x", blocks=BUTTONS)
            msg = sim.posted[-1]
            slash, click = [], []
            for _ in range(200):
                s = await sim.interactivity.slash("W0ALICE01", "C0SHARED1", "/echo-back", "a b")
                assert s.carrier == transport and s.acked
                slash.append(s.seconds * 1000)
                s = await sim.interactivity.click("W0ALICE01", "C0SHARED1", msg.ts, "vote:up")
                click.append(s.seconds * 1000)
            for name, xs in (
                ("slash (answer = return value)", slash),
                ("click (empty ack after respond)", click),
            ):
                xs.sort()
                print(
                    f"{transport} {name}: median {statistics.median(xs):.2f} ms, "
                    f"p95 {xs[int(len(xs) * 0.95)]:.2f} ms, n={len(xs)}"
                )


async def main(transports: list[str]) -> None:
    for transport in transports or list(TRANSPORTS):
        await measure(transport)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
