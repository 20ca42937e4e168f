"""How long a user waits for an interaction's ack, simulator to runtime and back over Socket Mode
(in-memory store, loopback): ``PYTHONPATH=$PWD:$PWD/tests python tests/interactive/ack_latency.py``."""

import asyncio
import statistics

from gridtest import wait_until
from interactive.kit import BUTTONS, SOCKET_MODE
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for


async def main() -> None:
    async with GridSimulator() as sim:
        config = config_for(sim, SOCKET_MODE, plugins=("interactive.kit",))
        async with Runtime(config) as rt:
            await wait_until(lambda: len(rt.supervisor.connected()) == 2, 10)
            c = AsyncWebClient(token="xoxb-sim-T0TEAM001", base_url=sim.api_url)
            await c.chat_postMessage(channel="C0SHARED1", text="x", blocks=BUTTONS)
            msg = sim.posted[-1]
            slash, click = [], []
            for _ in range(200):
                s = await sim.interactivity.slash("W0ALICE01", "C0SHARED1", "/echo-back", "a b")
                slash.append(s.seconds * 1000)
                s = await sim.interactivity.click("W0ALICE01", "C0SHARED1", msg.ts, "vote:up")
                click.append(s.seconds * 1000)
            for name, xs in (
                ("slash (answer = return value)", slash),
                ("click (empty ack after respond)", click),
            ):
                xs.sort()
                print(
                    f"{name}: median {statistics.median(xs):.2f} ms, p95 {xs[int(len(xs) * 0.95)]:.2f} ms, n={len(xs)}"
                )


if __name__ == "__main__":
    asyncio.run(main())
