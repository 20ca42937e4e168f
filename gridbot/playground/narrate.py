"""Names for ids, and one line of plain text for each log event the timeline shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridbot.testing.simulator import Topology


class Names:
    """Readable names for the org's ids: "Team One", "#shared-all", "DM carol", "alice"."""

    def __init__(self, topology: Topology) -> None:
        self.teams = {t.id: t.name or t.id for t in topology.teams}
        self.users = {u.id: u.name for u in topology.users}
        for u in topology.users:
            self.users.update({legacy: u.name for legacy in u.legacy_ids.values()})
        self.conversations: dict[str, str] = {}
        for c in topology.conversations:
            if c.kind in ("channel", "private"):
                label = f"#{c.name or c.id}"
            else:
                label = f"{c.kind.upper()} {', '.join(self.users.get(m, m) for m in c.members)}"
            self.conversations[c.id] = label

    def team(self, team: Any) -> str:
        return self.teams.get(team, str(team)) if team else "?"

    def conv(self, channel: Any) -> str:
        return self.conversations.get(channel, str(channel)) if channel else "?"


def _election(f: dict[str, Any], n: Names) -> str:
    where, team = n.conv(f.get("channel")), n.team(f.get("team_id"))
    if f.get("decision") == "kept":
        return f"{where}: {team} stays responsible"
    candidates = ", ".join(n.team(t) for t in f.get("candidates") or [])
    host = f"; host {n.team(f['host'])}" if f.get("host") else ""
    return f"{where}: {team} elected (candidates {candidates}{host})"


def _moved(f: dict[str, Any], n: Names) -> str:
    where, why = n.conv(f.get("channel")), str(f.get("reason") or "").replace("_", " ")
    if not f.get("team_id"):
        return f"{where}: election cleared ({why}), {n.team(f.get('previous'))} no longer answers"
    before, after = n.team(f.get("previous")), n.team(f.get("team_id"))
    return f"{where}: takeover, {before} → {after} (epoch {f.get('epoch')})"


def _team_state(f: dict[str, Any], n: Names) -> str:
    error = f" ({f['error']})" if f.get("error") else ""
    return f"{n.team(f.get('team_id'))}: {f.get('state')}{error}"


def _connect_failed(f: dict[str, Any], n: Names) -> str:
    return f"{n.team(f.get('link'))}: connect failed ({f.get('error')}), retry in {f.get('retry_in')} s"


def _handler(f: dict[str, Any], n: Names) -> str:
    what = f.get("exception") or f"timed out after {f.get('timeout_s')} s"
    return f"{f.get('plugin')}.{f.get('handler')} in {n.conv(f.get('channel'))}: {what}"


LINES: dict[str, Callable[[dict[str, Any], Names], str]] = {
    "election.decided": _election,
    "election.moved": _moved,
    "team.state": _team_state,
    "team.paused": lambda f, n: f"{n.team(f.get('team_id'))}: paused ({f.get('error')})",
    "link.connected": lambda f, n: (
        f"{n.team(f.get('link'))}: socket connected"
        + (f" (reconnect {f['reconnects']})" if f.get("reconnects") else "")
    ),
    "link.connect_failed": _connect_failed,
    "link.stale": lambda f, n: f"{n.team(f.get('link'))}: socket stale, replacing it",
    "link.stopped": lambda f, n: f"{n.team(f.get('link'))}: stopped ({f.get('error')})",
    "store.unavailable": lambda f, n: f"store unreachable: {f.get('buffered')} deliveries buffered",
    "store.recovered": lambda f, n: "store reachable again: draining the buffer",
    "plugin.loaded": lambda f, n: f"plugin {f.get('plugin')} loaded: {', '.join(f.get('handlers') or [])}",
    "plugin.load_failed": lambda f, n: f"plugin {f.get('plugin')} did not load: {f.get('error')}",
    "handler.failed": _handler,
    "handler.timeout": _handler,
    "frame.dropped": lambda f, n: (
        f"{n.team(f.get('team_id') or f.get('link'))}: frame dropped ({f.get('reason')})"
    ),
    "dedup.backpressure": lambda f, n: "backpressure: reading paused until the queue drains",
}


def line(name: str, fields: dict[str, Any], names: Names) -> str | None:
    """The timeline's text for a log event, or None for events that only feed the stories."""
    render = LINES.get(name)
    return render(fields, names) if render is not None else None
