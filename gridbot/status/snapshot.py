"""The status document of one process, and the election rows: the JSON every status reader shares.

The publisher writes the document to the store, ``/status`` serves it, ``gridbot status`` reads
it. Ids, states and counts only: never a token.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from gridbot.store import Election

if TYPE_CHECKING:
    from gridbot.runtime import Runtime


def process_document(rt: Runtime) -> dict[str, Any]:
    """This process as ``gridbot status`` shows it: ids, states, counts. Never a token."""
    teams: list[dict[str, Any]] = []
    if rt.supervisor is not None:
        for inst in list(rt.supervisor.installations.values()):
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
