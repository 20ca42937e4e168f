"""The ``gridbot`` command: argument parsing -> config -> logging -> run."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from gridbot import logs
from gridbot.config import ConfigError, error_report, load
from gridbot.tasks import cancel_and_wait

log = logs.get_logger("gridbot.cli")


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(error_report(args.config, exc), file=sys.stderr)
        return 2
    for warning in config.warnings:
        log.warning("config.warning", warning=warning)
    from gridbot.reload import Reloader
    from gridbot.runtime import Runtime, tune_gc

    tune_gc(config.runtime.gc_threshold)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runtime = Runtime(config)
        reloader = Reloader(runtime, args.config)  # SIGHUP: re-read the file, apply its [[teams]]
        loop.add_signal_handler(signal.SIGHUP, reloader.request)
        async with runtime:
            reloading = asyncio.create_task(reloader.run(), name="config:reloader")
            try:
                await stop.wait()
            finally:
                await cancel_and_wait([reloading])

    asyncio.run(main())
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load(args.file)
    except ConfigError as exc:
        print(error_report(args.file, exc), file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    transports = ", ".join(f"{t.transport}" for t in config.teams) or "none"
    store = "redis" if config.redis.url else "in-memory (one process only)"
    print(
        f"{args.file}: ok ({len(config.teams)} teams: {transports}; store: {store}; "
        f"plugins: {', '.join(config.plugins.enabled) or 'none'})"
    )
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from gridbot.testing.cli import run_simulate

    code: int = run_simulate(args.topology, args.host, args.port, args.write_config)
    return code


def _cmd_demo(args: argparse.Namespace) -> int:
    from gridbot.demo import run_demo

    code: int = asyncio.run(run_demo(redis_url=args.redis, http=args.http))
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridbot", description="A Slack bot runtime for Enterprise Grid.")
    parser.add_argument("--log-level", default="info", choices=logs.LEVELS)
    parser.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON log lines (default: when stdout is not a terminal)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="TOML config file")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file")
    check.set_defaults(func=_cmd_check_config)

    sim = sub.add_parser("simulate", help="serve the Enterprise Grid simulator")
    sim.add_argument("--topology", default=None, help="topology TOML (default: the three-team org)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0)
    sim.add_argument("--write-config", default=None, help="write a gridbot config for this simulator")
    sim.set_defaults(func=_cmd_simulate)

    demo = sub.add_parser("demo", help="run gridbot on the built-in simulator and print a transcript")
    demo.add_argument("--redis", default=None, help="use this Redis instead of the in-memory store")
    demo.add_argument(
        "--http", action="store_true", help="RTM, Socket Mode and the Events API over HTTP side by side"
    )
    demo.set_defaults(func=_cmd_demo)

    from gridbot.status.cli import add_commands

    add_commands(sub)  # status, elections
    from gridbot.playground.command import add_command

    add_command(sub)  # playground
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_demo = args.command == "demo" and args.log_level == "info"
    logs.configure(
        "warning" if quiet_demo else args.log_level,
        stream=sys.stderr if args.command == "demo" else None,
        json=args.log_json,
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
