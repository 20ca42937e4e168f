"""The ``gridbot`` command: argument parsing -> config -> logging -> run."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import traceback

from gridbot import logs
from gridbot.config import Config, ConfigError, error_report, load
from gridbot.loading import LoadFailure, PluginsFailed, load_plugins
from gridbot.secrets import redact
from gridbot.tasks import cancel_and_wait

log = logs.get_logger("gridbot.cli")


def _plugins_from_here() -> None:
    """``enabled = ["standup"]`` finds ``standup.py`` in the directory gridbot runs in, as
    ``python -m`` and pytest do; after the installed packages, so nothing installed is shadowed."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


def _tracebacks(failures: list[LoadFailure]) -> None:
    """Each failure's traceback on stderr (``--traceback``), secrets masked like every log line."""
    for failure in failures:
        cause = failure.exception.__cause__
        if cause is None:  # not found, a bad signature, a missing setting: the line says it all
            continue
        text = "".join(traceback.format_exception(cause))
        print(f"\n{failure.name}:\n{redact(text)}", file=sys.stderr, end="")


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(error_report(args.config, exc), file=sys.stderr)
        return 2
    _plugins_from_here()
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

    try:
        asyncio.run(main())
    except PluginsFailed as exc:  # plugins.strict: each is logged above, one plugin.load_failed line
        count = len(exc.failures)
        print(
            f"{args.config}: not started: {count} plugin{'s' if count > 1 else ''} failed to load "
            "and plugins.strict = true (each is logged as plugin.load_failed)",
            file=sys.stderr,
        )
        if args.traceback:
            _tracebacks(exc.failures)
        return 2
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    """Read the file as ``run`` would, load every plugin it enables, and name every problem."""
    _plugins_from_here()
    problems: list[str] = []
    try:
        config: Config | None = load(args.file)
    except ConfigError as exc:
        problems, config = list(exc.problems), exc.partial
    if config is None:
        print(error_report(args.file, ConfigError(problems)), file=sys.stderr)
        return 2
    plugins, failures = load_plugins(config.plugins.enabled, config.plugins.settings)
    problems += [redact(f.line) for f in failures]  # a plugin's own message may quote a token
    warnings = list(config.warnings)
    names = {p.name for p in plugins}
    if not failures:
        warnings += [
            f"plugins.{table}: no enabled plugin is named {table!r}; these settings are not used"
            for table in config.plugins.settings
            if table not in names
        ]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if problems:
        print(error_report(args.file, ConfigError(problems)), file=sys.stderr)
        if args.traceback:
            _tracebacks(failures)
        return 2
    transports = ", ".join(f"{t.transport}" for t in config.teams) or "none"
    store = "redis" if config.redis.url else "in-memory (one process only)"
    print(
        f"{args.file}: ok ({len(config.teams)} teams: {transports}; store: {store}; "
        f"plugins: {', '.join(p.name for p in plugins) or 'none'})"
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

    traced = "print the traceback of each plugin that fails to load (a strict start-up)"
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="TOML config file")
    run.add_argument("--traceback", action="store_true", help=traced)
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check-config", help="validate a config file and load its plugins, then exit")
    check.add_argument("file")
    check.add_argument("--traceback", action="store_true", help="print the traceback of each failing plugin")
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
