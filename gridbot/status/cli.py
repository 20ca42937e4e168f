"""The ``gridbot status`` and ``gridbot elections`` commands: arguments, exit codes, output.

Exit codes: 0 done, 2 invalid arguments or config, 3 the deployment cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from typing import Any

from gridbot.config import Config, ConfigError, error_report, load
from gridbot.status.gather import StatusUnavailable, elections, gather
from gridbot.status.render import render, render_elections
from gridbot.store import StoreUnavailable

_CHANNEL_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
_TEAM_RE = re.compile(r"T[A-Z0-9]{2,}")


def _load(path: str) -> Config | None:
    """The config, or None once its problems are printed as ``gridbot check-config`` prints them."""
    try:
        return load(path)
    except ConfigError as exc:
        print(error_report(path, exc), file=sys.stderr)
        return None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def cmd_status(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    try:
        data = asyncio.run(gather(config))
    except StatusUnavailable as exc:
        print(f"gridbot status: {exc}", file=sys.stderr)
        return 3
    except StoreUnavailable as exc:
        print(f"gridbot status: the store does not answer ({exc})", file=sys.stderr)
        return 3
    if args.json:
        _print_json(data)
    else:
        print(render(data))
    return 0


def cmd_elections(args: argparse.Namespace) -> int:
    channel, team = getattr(args, "channel", None), getattr(args, "team", None)
    if channel is not None and not _CHANNEL_RE.fullmatch(channel):
        print(f"gridbot elections: {channel!r} is not a channel id (C…, G… or D…)", file=sys.stderr)
        return 2
    if team is not None and not _TEAM_RE.fullmatch(team):
        print(f"gridbot elections: {team!r} is not a team id (T…)", file=sys.stderr)
        return 2
    config = _load(args.config)
    if config is None:
        return 2
    try:
        data = asyncio.run(elections(config, args.action, channel, team))
    except (StatusUnavailable, StoreUnavailable) as exc:
        print(f"gridbot elections: {exc}", file=sys.stderr)
        return 3
    if args.json:
        _print_json(data)
        return 0
    if "warning" in data:
        print(f"warning: {data['warning']}", file=sys.stderr)
    if "pinned" in data:
        print(f"pinned {data['pinned']['channel']} to {data['pinned']['team_id']}")
    if data.get("cleared"):
        print(f"cleared {data['channel']} (the next event elects again)")
    elif "cleared" in data:
        print(f"had no election: {data['channel']}")
    print("\n".join(render_elections(data["elections"])))
    return 0


def add_commands(sub: Any) -> None:
    """Register ``status`` and ``elections`` on the CLI's subparsers."""
    status = sub.add_parser("status", help="teams, processes and elections of a running deployment")
    status.add_argument("--config", required=True, help="TOML config file")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    parser = sub.add_parser("elections", help="list, pin or clear the responsible team of a channel")
    actions = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("list", "every conversation's responsible team"),
        ("set", "pin CHANNEL to TEAM (survives takeovers unless TEAM is down)"),
        ("clear", "forget CHANNEL's election; the next event elects again"),
    ):
        p = actions.add_parser(name, help=help_text)
        p.add_argument("--config", required=True, help="TOML config file")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if name in ("set", "clear"):
            p.add_argument("channel", help="channel id, e.g. C0SHARED1")
        if name == "set":
            p.add_argument("team", help="team id, e.g. T0TEAM002")
        p.set_defaults(func=cmd_elections)
