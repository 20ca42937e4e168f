"""``python -m bench.handled_line``: what the ``event.handled`` info line costs per handled event.

In-process, no sockets: the same events dispatched to a no-op handler with the line off and on
(``[logging] handled_events``), in interleaved rounds because this machine's speed drifts, with
the daemon's logging (JSON lines at info, every value through the secret redaction) written to
/dev/null. Prints each round and the medians: microseconds per event off, on, and the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from types import SimpleNamespace
from typing import Any

from gridbot import Context, logs
from gridbot.dispatch import Dispatcher, Router
from gridbot.events import Event, normalise
from gridbot.plugins import Plugin
from gridbot.secrets import Secret

plugin = Plugin("noop")


@plugin.message(r"")
async def noop(ctx: Context) -> None:
    return None


def events(count: int) -> list[Event]:
    frames = [
        {"type": "message", "channel": "C0SHARED1", "ts": f"1796000000.{n:06d}", "user": "W0ALICE01"}
        for n in range(count)
    ]
    return [normalise({**f, "text": "hello"}, team_id="T0TEAM001", enterprise_id="E0GRID001") for f in frames]


async def one_round(batch: list[Event], on: bool) -> float:
    """Microseconds per event: dispatch in batches of 250 (the intake's bound), run, drain."""
    context: Any = lambda event, team, name: SimpleNamespace()  # noqa: E731
    dispatcher = Dispatcher(Router([plugin], command_prefix="!", bot_user_ids=()), context, log_handled=on)
    started = time.perf_counter()
    for first in range(0, len(batch), 250):
        for event in batch[first : first + 250]:
            dispatcher.dispatch(event, "T0TEAM001", "handled")
        await asyncio.sleep(0)
    await dispatcher.drain(30)
    return (time.perf_counter() - started) / len(batch) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.handled_line", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=15, help="pairs of rounds (off, on)")
    args = parser.parse_args()
    for team in ("T0TEAM001", "T0TEAM002", "T0TEAM003"):  # a daemon's registered secrets
        Secret(f"xoxb-bench-{team}-0123456789")
    devnull = open(os.devnull, "w")  # noqa: ASYNC230 (once, before anything runs)
    logs.configure("info", stream=devnull, json=True)
    batch = events(args.events)
    await one_round(batch, False)  # warm up
    off: list[float] = []
    on: list[float] = []
    for n in range(args.rounds):
        order = (False, True) if n % 2 == 0 else (True, False)
        for flag in order:
            (on if flag else off).append(await one_round(batch, flag))
        print(f"round {n + 1:2}: off {off[-1]:6.2f} us/event, on {on[-1]:6.2f} us/event")
    print(
        f"median: off {statistics.median(off):.2f} us/event, on {statistics.median(on):.2f} us/event, "
        f"the line {statistics.median(b - a for a, b in zip(off, on, strict=True)):.2f} us/event"
    )


if __name__ == "__main__":
    asyncio.run(main())
