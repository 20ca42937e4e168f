"""What ``gridbot status`` and ``gridbot elections`` show, and how a running daemon publishes it.

Each process writes a small JSON status document to the store (its teams, their connection
state, last event time and error) every few seconds with a TTL, so a process that dies drops out
of ``gridbot status`` by itself. With Redis the CLI reads those documents and the elections from
Redis directly; the in-memory store lives inside the daemon, so there the CLI asks the daemon's
``/status`` endpoint, which needs ``[http] port``. Documents hold ids and states, never tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from gridbot.config import Config, ConfigError, load
from gridbot.logs import get_logger
from gridbot.store import Election, Store, StoreUnavailable

if TYPE_CHECKING:
    from gridbot.runtime import Runtime

log = get_logger("gridbot.status")

_CHANNEL_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
_TEAM_RE = re.compile(r"T[A-Z0-9]{2,}")


class StatusUnavailable(Exception):
    """The CLI has no way to read the daemon's state (said in plain words)."""


# -- the daemon side -------------------------------------------------------------------------------


def process_document(rt: Runtime) -> dict[str, Any]:
    """This process as ``gridbot status`` shows it: ids, states, counts. Never a token."""
    teams: list[dict[str, Any]] = []
    if rt.supervisor is not None:
        for inst in list(rt.supervisor.connections.values()):
            reconnects = sum(lk.reconnects for lk in inst.links)
            for team in list(inst.teams):
                teams.append(
                    {
                        "team_id": team.team_id or None,
                        "name": team.config.name,
                        "config_index": team.index,
                        "installation": inst.key,
                        "enterprise_id": team.enterprise_id,
                        "transport": team.config.transport,
                        "state": team.state,
                        "error": team.error,
                        "last_event_at": team.last_event_at,
                        "reconnects": reconnects,
                    }
                )
    counters: dict[str, int] = {}
    if rt.dedup is not None:
        counters.update(dataclasses.asdict(rt.dedup.counters))
    if rt.elector is not None:
        counters["takeovers"] = rt.elector.takeovers
    if rt.dispatcher is not None:
        counters.update({f"handlers_{k}": v for k, v in dataclasses.asdict(rt.dispatcher.counters).items()})
    http = rt.http.address if rt.http is not None else None
    return {
        "instance": rt.instance_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": rt.started_at,
        "updated_at": time.time(),
        "stopping": rt.stopping,
        "store": "memory" if rt.config.redis.url is None else "redis",
        "store_ok": rt.dedup.store_ok if rt.dedup is not None else None,
        "http": http,
        "teams": teams,
        "counters": counters,
    }


class StatusPublisher:
    """Writes :func:`process_document` every ``interval`` s (TTL 3x), samples store latency."""

    def __init__(self, rt: Runtime, interval: float) -> None:
        self._rt = rt
        self.interval = interval

    async def run(self) -> None:
        try:
            while True:
                await self.publish_once()
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):  # a dead store must not block shutdown
                async with asyncio.timeout(2):
                    await self._rt.store.withdraw_status(self._rt.instance_id)

    async def publish_once(self) -> None:
        store = self._rt.store
        try:
            started = time.perf_counter()
            await store.ping()
            self._rt.metrics.observe_store(time.perf_counter() - started)
            await store.publish_status(self._rt.instance_id, process_document(self._rt), self.interval * 3)
        except StoreUnavailable as exc:
            log.warning("status.publish_failed", error=str(exc))


# -- the operator side -----------------------------------------------------------------------------


def _election_row(channel: str, election: Election) -> dict[str, Any]:
    return {
        "channel": channel,
        "team_id": election.team,
        "epoch": election.epoch,
        "pinned": election.pinned,
        "candidates": list(election.candidates),
        # The epoch only moves on a takeover or a pin; a pin sets pinned, a takeover clears it.
        "moved": election.epoch > 1 and not election.pinned,
    }


def election_rows(elections: dict[str, Election]) -> list[dict[str, Any]]:
    return [_election_row(c, e) for c, e in sorted(elections.items())]


async def _open_store(config: Config) -> Store:
    from gridbot.runtime import make_store

    return make_store(config)


async def _members(store: Store) -> list[str]:
    """The process registry's members, where the store has one (team ownership, scale-out)."""
    processes = getattr(store, "processes", None)
    if processes is None:
        return []
    try:
        return sorted(await processes())
    except NotImplementedError:
        return []


async def _from_redis(config: Config) -> dict[str, Any]:
    store = await _open_store(config)
    try:
        docs = await store.statuses()
        elections = await store.elections()
        team_ids = sorted({t["team_id"] for d in docs.values() for t in d.get("teams", []) if t["team_id"]})
        alive = await store.alive(team_ids)
        store_members = await _members(store)
    finally:
        await store.close()
    for instance in store_members:  # a member whose first status document is not written yet
        docs.setdefault(instance, {"instance": instance, "teams": [], "note": "registered, no status yet"})
    processes = sorted(docs.values(), key=lambda d: str(d.get("instance")))
    for doc in processes:
        for team in doc.get("teams", []):
            team["lease"] = team["team_id"] in alive
    return {"source": "redis", "processes": processes, "elections": election_rows(elections)}


async def _from_http(config: Config) -> dict[str, Any]:
    host = "127.0.0.1" if config.http.host in ("0.0.0.0", "::", "") else config.http.host
    url = f"http://{host}:{config.http.port}/status"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            data: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StatusUnavailable(
            f"the daemon does not answer on {url} ({type(exc).__name__}); with the in-memory store "
            "its state lives only inside the running process"
        ) from None
    data["source"] = "http"
    return data


def _unserved(config: Config, processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configured installations no live process reports (their process died, or never ran)."""
    from gridbot.config import connection_key as installation_key

    reported = {t.get("installation") for d in processes for t in d.get("teams", [])}
    return [
        {"config_index": i, "name": t.name, "transport": t.transport, "installation": installation_key(t)}
        for i, t in enumerate(config.teams)
        if installation_key(t) not in reported
    ]


async def gather(config: Config) -> dict[str, Any]:
    """Everything ``gridbot status`` shows, as one JSON-able document."""
    if config.redis.url is not None:
        data = await _from_redis(config)
    elif config.http.port is not None:
        data = await _from_http(config)
    else:
        raise StatusUnavailable(
            "this config uses the in-memory store, whose state lives only inside the daemon process; "
            "set [http] port in the config (and restart the daemon) so that `gridbot status` can ask it"
        )
    data["unserved"] = _unserved(config, data["processes"])
    return data


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    seconds = max(now - ts, 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def render(data: dict[str, Any], now: float | None = None) -> str:
    """The readable form: processes, teams, elections."""
    now = time.time() if now is None else now
    procs = data.get("processes", [])
    lines = [f"Processes ({len(procs)}, read via {data.get('source')})"]
    lines += _table(
        ["INSTANCE", "PID", "TEAMS", "STORE", "HTTP", "UPDATED"],
        [
            [
                str(d.get("instance")) + (" (stopping)" if d.get("stopping") else ""),
                str(d.get("pid", "-")),
                str(len(d.get("teams", []))),
                f"{d.get('store')}{'' if d.get('store_ok', True) else ' (unreachable)'}",
                str(d.get("http") or "-"),
                _ago(d.get("updated_at"), now),
            ]
            for d in procs
        ],
    )
    team_rows = []
    for d in procs:
        for t in d.get("teams", []):
            lease = {True: "yes", False: "no"}.get(t.get("lease"), "-")
            team_rows.append(
                [
                    str(t.get("team_id") or f"teams[{t.get('config_index')}]"),
                    str(t.get("name") or "-"),
                    str(t.get("enterprise_id") or "-"),
                    str(t.get("transport")),
                    str(t.get("state")),
                    _ago(t.get("last_event_at"), now),
                    lease,
                    str(d.get("instance")),
                    str(t.get("error") or ""),
                ]
            )
    for u in data.get("unserved", []):
        team_rows.append(
            [
                f"teams[{u['config_index']}]",
                u["name"] or "-",
                "-",
                u["transport"],
                "not running",
                "-",
                "-",
                "-",
                "no live process serves it",
            ]
        )
    lines += ["", f"Teams ({len(team_rows)})"]
    lines += _table(
        ["TEAM", "NAME", "ENTERPRISE", "TRANSPORT", "STATE", "LAST EVENT", "LEASE", "PROCESS", "ERROR"],
        team_rows,
    )
    lines += ["", *render_elections(data.get("elections", []))]
    return "\n".join(lines)


def render_elections(rows: list[dict[str, Any]]) -> list[str]:
    lines = [f"Elections ({len(rows)})"]
    lines += _table(
        ["CHANNEL", "TEAM", "EPOCH", "PINNED", "CANDIDATES", "NOTE"],
        [
            [
                r["channel"],
                r["team_id"],
                str(r["epoch"]),
                "yes" if r["pinned"] else "no",
                ",".join(r["candidates"]),
                f"taken over ({r['epoch'] - 1}x)" if r["moved"] else ("pinned" if r["pinned"] else ""),
            ]
            for r in rows
        ],
    )
    return lines


# -- commands --------------------------------------------------------------------------------------


def _load(path: str) -> Config | None:
    try:
        return load(path)
    except ConfigError as exc:
        print(f"{path}: invalid", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
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


async def _elections(config: Config, action: str, channel: str | None, team: str | None) -> dict[str, Any]:
    if config.redis.url is None:
        if action != "list":
            raise StatusUnavailable(
                "pinning needs the shared store: with the in-memory store the elections live inside the "
                "daemon process (configure [redis] url)"
            )
        data = await gather(config)
        return {"elections": data["elections"]}
    store = await _open_store(config)
    try:
        result: dict[str, Any] = {}
        if action == "set":
            assert channel is not None and team is not None
            statuses = await store.statuses()
            served = {t["team_id"] for d in statuses.values() for t in d.get("teams", [])}
            if team not in served and not await store.alive([team]):
                result["warning"] = (
                    f"no live process serves {team} (no status document, no liveness lease): a standby "
                    "will answer its messages and move the election off the pin"
                )
            result["pinned"] = _election_row(channel, await store.pin(channel, team))
        elif action == "clear":
            assert channel is not None
            result["cleared"] = await store.clear(channel)
            result["channel"] = channel
        result["elections"] = election_rows(await store.elections())
        return result
    finally:
        await store.close()


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
        data = asyncio.run(_elections(config, args.action, channel, team))
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
    if "cleared" in data:
        verb = "cleared" if data["cleared"] else "had no election:"
        print(
            f"{verb} {data['channel']} (the next event elects again)"
            if data["cleared"]
            else f"{verb} {data['channel']}"
        )
    print("\n".join(render_elections(data["elections"])))
    return 0


def add_commands(sub: Any) -> None:
    """Register ``status`` and ``elections`` on the CLI's subparsers."""
    status = sub.add_parser("status", help="teams, processes and elections of a running deployment")
    status.add_argument("--config", required=True, help="TOML config file")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    elections = sub.add_parser("elections", help="list, pin or clear the responsible team of a channel")
    actions = elections.add_subparsers(dest="action", required=True)
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
