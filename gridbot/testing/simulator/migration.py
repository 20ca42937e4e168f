"""``migration.exchange``: legacy user ids of a workspace that joined the org, to the org's ids and
back.

/work/shared/reference/platform-2026.md, "OAuth and token rotation" (lifecycle): "``migration.exchange``
maps legacy user ids to new ones when a workspace joins the org (at most 400 ids per call,
``to_old`` for the reverse)"; enterprise-grid-developer-guide.txt ("Ideally we'd like you to start
using the new user IDs ... getting the new ID for every user currently existing in your
database"). The ids are those of the caller's workspace: a legacy id of another workspace, or an
id that is no user's, comes back in ``invalid_user_ids``. More than 400 ids is refused outright
(the reference gives the limit, not the error's name: ``too_many_users`` here).
"""

from __future__ import annotations

from typing import Any

from .state import OrgState
from .translate import resolve_user
from .webapi import BOT_OR_USER, ApiError, Call, WebApi

MAX_IDS = 400


class Migration:
    def __init__(self, state: OrgState, api: WebApi) -> None:
        self._state = state
        api.add("migration.exchange", self.exchange, BOT_OR_USER)

    async def exchange(self, call: Call) -> dict[str, Any]:
        raw = call.arg("users")
        ids = [u.strip() for u in raw.split(",") if u.strip()]
        if not ids:
            raise ApiError("invalid_users")
        if len(ids) > MAX_IDS:
            raise ApiError("too_many_users")
        to_old = str(call.opt("to_old") or "").lower() in ("1", "true")
        team = call.opt("team_id") or call.token.team_id
        if call.token.team_id and team != call.token.team_id:
            # a workspace's token speaks for its workspace only (slack-protocol-notes.md, H)
            raise ApiError("team_access_not_granted")
        topo = self._state.topology
        mapping: dict[str, str] = {}
        invalid: list[str] = []
        for user_id in ids:
            user = resolve_user(topo, user_id, team)
            legacy = user.legacy_ids.get(team or "") if user is not None else None
            if user is None or legacy is None:
                invalid.append(user_id)  # no legacy id in this workspace: nothing to exchange
            elif to_old and user_id == user.id:
                mapping[user_id] = legacy
            elif not to_old and user_id == legacy:
                mapping[user_id] = user.id
            else:
                invalid.append(user_id)
        return {
            "team_id": team,
            "enterprise_id": topo.enterprise.id,
            "user_id_map": mapping,
            "invalid_user_ids": invalid,
        }
