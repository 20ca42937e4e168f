"""``python -m bench.decider``: the dedup stage's own cost per delivery, in one process, no sockets.

Three teams read one shared conversation; every message arrives as three copies. Two shapes:

* ``together``: the responsible team's copy is in the same batch as the others (the common case:
  one question, handled, two duplicates merged on arrival);
* ``standby first``: the two standby copies are decided a batch before the responsible copy
  (each is held as a standby copy, then let go when the responsible copy claims the event): the
  path that now also looks up the responsible team's heartbeat.

Against the in-memory store (the stage's CPU alone) and, with ``--redis URL``, a real Redis.
Prints the median of ``--runs`` runs in microseconds per delivery. Only public interfaces, so the
same script measures any revision (``PYTHONPATH=<checkout> python -m bench.decider``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import uuid
from collections.abc import Callable

from gridbot import logs
from gridbot.bots import Bots
from gridbot.dedup import Decider, Intake
from gridbot.election import Elector
from gridbot.events import Event
from gridbot.store import MemoryStore, RedisStore, Store

TEAMS = ("T1", "T2", "T3")


async def turns_until(done: Callable[[], bool]) -> None:
    """Yield loop turns until ``done()``: the stage's own pace, no timer in the measurement."""
    while not done():  # noqa: ASYNC110 (an Event would need a hook into the stage)
        await asyncio.sleep(0)


async def one_run(store: Store, messages: int, shape: str, chunk: int) -> float:
    bots = Bots()
    intake = Intake(bots)
    elector = Elector(store, installed=lambda: set(TEAMS), client_for=lambda _t: None)
    handled = 0

    def dispatch(event: Event, team: str, decision: str) -> None:
        nonlocal handled
        handled += 1

    decider = Decider(intake, store, elector, dispatch, bots=bots, standby_grace=60.0)
    channel = f"C{uuid.uuid4().hex[:8]}"
    await store.elect(channel, "T1", TEAMS)
    await store.renew_alive(list(TEAMS), "bench", 600_000)
    task = asyncio.create_task(decider.run(), name="bench:decider")

    def frame(n: int) -> dict[str, object]:
        return {"type": "message", "channel": channel, "ts": f"{n}.000100", "user": "W1", "text": "hello"}

    try:
        started = time.perf_counter()
        for base in range(0, messages, chunk):
            ns = range(base, min(base + chunk, messages))
            if shape == "together":
                for n in ns:
                    for team in TEAMS:
                        intake.offer(frame(n), team, "E1", (team,))
            else:
                for n in ns:
                    for team in ("T2", "T3"):
                        intake.offer(frame(n), team, "E1", (team,))
                await turns_until(lambda ns=ns: not intake.queued and decider.backlog == len(ns))  # held
                for n in ns:
                    intake.offer(frame(n), "T1", "E1", ("T1",))
            await turns_until(lambda: not intake.queued)
        await turns_until(lambda: handled >= messages and not decider.backlog)
        elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return elapsed / (messages * len(TEAMS)) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decider", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=200, help="messages offered between loop turns")
    parser.add_argument("--redis", default=None, help="also measure against this Redis URL")
    args = parser.parse_args()
    gc.set_threshold(10_000, 20, 10)  # as the daemon runs (runtime.tune_gc)
    logs.configure("info")  # as the daemon runs: decisions are debug lines, off
    stores: list[tuple[str, type[Store] | None]] = [("memory", None)]
    if args.redis:
        stores.append(("redis", RedisStore))
    for name, _ in stores:
        for shape in ("together", "standby first"):
            figures = []
            for _ in range(args.runs):
                if name == "memory":
                    store: Store = MemoryStore()
                else:
                    store = RedisStore.from_url(args.redis, key_prefix=f"benchdec:{uuid.uuid4().hex[:8]}")
                figures.append(await one_run(store, args.messages, shape, args.chunk))
                if isinstance(store, RedisStore):
                    keys = [k async for k in store._r.scan_iter(match=f"{store.keys.prefix}:*", count=1000)]
                    for n in range(0, len(keys), 1000):
                        await store._r.delete(*keys[n : n + 1000])
                await store.close()
            print(
                f"{name:<7} {shape:<14} {statistics.median(figures):6.2f} us/delivery  (runs: "
                + ", ".join(f"{f:.2f}" for f in figures)
                + ")"
            )


if __name__ == "__main__":
    asyncio.run(main())
