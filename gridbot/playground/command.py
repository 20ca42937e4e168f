"""``gridbot playground``: its arguments, and running it until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

DEFAULT_PLUGINS = ("echo", "help")


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    play = sub.add_parser(
        "playground",
        help="the simulator and the runtime behind a local web page: watch the grid decide, inject faults",
    )
    play.add_argument("--host", default="127.0.0.1", help="address of the page (default: loopback only)")
    play.add_argument("--port", type=int, default=8765, help="port of the page (0: any free port)")
    play.add_argument("--redis", default=None, help="use this Redis instead of the in-memory store")
    play.add_argument(
        "--plugins",
        nargs="+",
        default=None,
        metavar="PLUGIN",
        help="plugins to load: bundled names, dotted module paths, or .py files (default: echo help)",
    )
    play.add_argument("--seed", type=int, default=0, help="the simulator's seed (order of copies)")
    play.set_defaults(func=_run)


def plugin_names(values: list[str] | None) -> tuple[str, ...]:
    """``--plugins`` as loader names; a ``.py`` file is loaded as a module from its folder."""
    if not values:
        return DEFAULT_PLUGINS
    names: list[str] = []
    for value in (v for item in values for v in item.split(",") if v.strip()):
        value = value.strip()
        if value.endswith(".py"):
            path = Path(value).resolve()
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            value = f"{path.stem}:"  # a module path: the loader imports it and finds its plugin
        names.append(value)
    return tuple(names)


def _run(args: argparse.Namespace) -> int:
    from .app import Playground, PlaygroundError, exposed

    if os.getcwd() not in sys.path:  # plugins of the project one is standing in
        sys.path.insert(0, os.getcwd())
    playground = Playground(
        plugins=plugin_names(args.plugins),
        redis_url=args.redis,
        host=args.host,
        port=args.port,
        seed=args.seed,
        log_level=args.log_level,
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with playground:
                plugins = ", ".join(p.name for p in playground.runtime.plugins) or "none"
                store = playground.org()["store"]
                print(f"gridbot playground: {playground.url}", flush=True)
                print(f"  simulator {playground.sim.api_url}; store: {store}; plugins: {plugins}", flush=True)
                if exposed(args.host):
                    print("  warning: the page has no login and is reachable beyond this machine", flush=True)
                print("  press Ctrl-C to stop", flush=True)
                await stop.wait()
        except PlaygroundError as exc:
            print(f"gridbot playground: {exc}", file=sys.stderr, flush=True)
            return 1
        print("gridbot playground: stopped", flush=True)
        return 0

    return asyncio.run(main())
