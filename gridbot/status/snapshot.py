"""The status document of one process, and the election rows: the JSON every status reader shares.

The publisher writes the document to the store, ``/status`` serves it, ``gridbot status`` reads
it. Ids, states and counts only: never a token.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from gridbot.status.view import RuntimeView, team_views
from gridbot.store import Election

# A team's row in the document (gridbot status reads these names).
TEAM_FIELDS = (
    "team_id",
    "name",
    "config_index",
    "connection",
    "enterprise_id",
    "transport",
    "state",
    "error",
    "last_event_at",
    "reconnects",
    "source",
    "expires_at",
)


def process_document(view: RuntimeView, http: str | None) -> dict[str, Any]:
    """This process as ``gridbot status`` shows it: ids, states, counts. Never a token.

    ``http`` is the address of the ops endpoint, if it runs.
    """
    decided, ran = view.decisions.counters, view.handlers.counters
    return {
        "instance": view.instance_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": view.lifecycle.started_at,
        "updated_at": time.time(),
        "stopping": view.lifecycle.stopping,
        "store": "redis" if view.store.shared else "memory",
        "store_ok": view.decisions.store_ok,
        "http": http,
        "teams": [t.pick(*TEAM_FIELDS) for t in team_views(view.connections(), view.installs)],
        "installations": view.installs.rows() if view.installs is not None else [],
        "rotation": view.installs.rotation() if view.installs is not None else None,
        "counters": {
            "handled": decided.handled,
            "duplicate": decided.duplicate,
            "standby": decided.standby,
            "rescued": decided.rescued,
            "own_message": decided.own_message,
            "dropped_overflow": decided.dropped_overflow,
            "store_errors": decided.store_errors,
            "backpressure": decided.backpressure,
            "takeovers": view.elector.takeovers,
            "handlers_started": ran.started,
            "handlers_failed": ran.failed,
            "handlers_timed_out": ran.timed_out,
            "handlers_match_timeouts": ran.match_timeouts,
        },
    }


def election_row(channel: str, election: Election) -> dict[str, Any]:
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
    return [election_row(c, e) for c, e in sorted(elections.items())]
