"""The readable form of ``gridbot status`` and ``gridbot elections``: aligned text tables."""

from __future__ import annotations

import time
from typing import Any


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    seconds = max(now - ts, 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


_TEAM_COLUMNS = (
    "TEAM",
    "NAME",
    "ENTERPRISE",
    "TRANSPORT",
    "SOURCE",
    "TOKEN EXPIRES",
    "STATE",
    "LAST EVENT",
    "HEARTBEAT",
    "PROCESS",
    "ERROR",
)


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
            heartbeat = {True: "yes", False: "no"}.get(t.get("heartbeat"), "-")
            team_rows.append(
                [
                    str(t.get("team_id") or f"teams[{t.get('config_index')}]"),
                    str(t.get("name") or "-"),
                    str(t.get("enterprise_id") or "-"),
                    str(t.get("transport")),
                    str(t.get("source") or "config"),
                    _expires(t.get("expires_at"), now),
                    str(t.get("state")),
                    _ago(t.get("last_event_at"), now),
                    heartbeat,
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
                "config",
                "-",
                "not running",
                "-",
                "-",
                "-",
                "no live process serves it",
            ]
        )
    lines += ["", f"Teams ({len(team_rows)})"]
    lines += _table(
        [*_TEAM_COLUMNS],
        team_rows,
    )
    lines += render_installations(procs, now)
    lines += ["", *render_elections(data.get("elections", []))]
    return "\n".join(lines)


def _expires(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    left = ts - now
    if left <= 0:
        return "expired"
    return f"in {left / 60:.0f}m" if left < 7200 else f"in {left / 3600:.1f}h"


def _kind(row: dict[str, Any]) -> str:
    """``workspace``, or ``org-wide:`` and the workspaces it serves (those granted, listed)."""
    if not row.get("org_wide"):
        return "workspace"
    return "org-wide:" + (",".join(row.get("workspaces") or []) or "-")


def render_installations(procs: list[dict[str, Any]], now: float) -> list[str]:
    """The installation store's entries (``[oauth]``), as every process reported them, once each."""
    rows: dict[str, dict[str, Any]] = {}
    for d in procs:
        for row in d.get("installations", []):
            rows.setdefault(str(row.get("id")), row)
    if not rows:
        return []
    table = [
        [
            key,
            str(r.get("team_id") or r.get("enterprise_id") or "-"),
            _kind(r),
            str(r.get("source", "oauth")),
            _expires(r.get("expires_at"), now),
            str(r.get("failed") or "ok"),
        ]
        for key, r in sorted(rows.items())
    ]
    headers = ["ID", "TEAM", "KIND", "SOURCE", "TOKEN EXPIRES", "STATE"]
    return ["", f"Installations ({len(rows)})", *_table(headers, table)]


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
