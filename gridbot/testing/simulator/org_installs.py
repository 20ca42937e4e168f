"""Org-wide installs: one org token, workspaces granted and revoked by an org admin.

What the reference says, and how the simulator does it:

* platform-2026.md, "Org-ready apps": "Installed once at org level (``is_enterprise_install:
  true``, the install keyed by ``enterprise_id``, ``team_id`` absent); admins then grant
  workspaces: ``team_access_granted`` / ``team_access_revoked`` events; ``auth.teams.list`` lists
  the workspaces the token can act in. Some methods then need an explicit ``team_id``." And
  "[field] An org install alone leaves the bot silent in a workspace until access is granted
  there": :meth:`OrgInstalls.install` grants nothing unless told; a workspace not granted gets
  no event and its calls are refused ``team_access_not_granted`` (the error migration.exchange
  answers for a workspace a token cannot act in, slack-protocol-notes.md H).
* slack-protocol-notes.md D: "Org apps also get ``team_access_granted``/``team_access_revoked``
  (``{"team_ids":[…]}``)", delivered to the app like any event, with ``authorizations[0]``
  naming the org install: ``team_id`` null, ``is_enterprise_install`` true (notes C, D).
* Events of a granted workspace go out once per app (delivery.py), their ``authorizations`` the
  org install's (``OrgState.org_wide``).

Stricter than Slack, never kinder: the org token must name its workspace (``team_id``) on every
call but ``auth.test`` and ``auth.teams.list`` (Slack resolves some methods from the channel
alone: ``missing_argument`` here). The org token's ``auth.test`` without a ``team_id`` names the
org: ``team_id`` is the enterprise id [infer]. Each granted workspace is an installation row of
the app with a token of its own that only the simulator holds (the org token acts as it), and
a bot user id of its own (Slack's org bot has one id across the org [infer]; gridbot keys
nothing on it being one).
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .delivery import Fanout
from .model import Installation
from .state import OrgState, TokenInfo
from .webapi import ApiError, Call, Handler, WebApi

ORG_LEVEL = frozenset({"auth.test", "auth.teams.list"})  # an org token may call these without team_id


@dataclass
class OrgInstall:
    app_id: str
    token: str
    bot_user_id: str
    bot_id: str
    granted: set[str] = field(default_factory=set)
    rows: dict[str, str] = field(default_factory=dict)  # workspace -> its installation row's token
    sent: list[dict[str, Any]] = field(default_factory=list)  # team_access_* payloads sent


class OrgInstalls:
    """``sim.org_installs``: install an app org-wide, grant and revoke workspaces."""

    def __init__(self, state: OrgState, api: WebApi, fanout: Fanout) -> None:
        self._state = state
        self._fanout = fanout
        self._by_app: dict[str, OrgInstall] = {}
        self._by_token: dict[str, OrgInstall] = {}
        self._serial = itertools.count(1)
        api.add("auth.teams.list", self.teams_list, frozenset({"bot"}))
        handler, kinds = api.methods["auth.test"]
        api.add("auth.test", self._auth_test(handler), kinds)
        api.org_token = self.acting

    def install(self, app_id: str, *, grant: tuple[str, ...] = ()) -> OrgInstall:
        """App ``app_id`` installed org-wide (it replaces the app's workspace installs); the
        workspaces in ``grant`` granted at once, without events (granted before gridbot ran)."""
        topo = self._state.topology
        app = topo.app_by_id[app_id]
        n = next(self._serial)
        org = OrgInstall(
            app_id, f"xoxb-sim-org-{app_id}-{secrets.token_hex(6)}", f"U0ORGBOT{n}", f"B0ORGBOT{n}"
        )
        rows = []
        for i, workspace in enumerate(t.id for t in topo.teams):
            token = f"xoxb-sim-orgrow-{secrets.token_hex(8)}"  # never handed out
            rows.append(Installation(workspace, token, f"{org.bot_user_id}X{i}", f"{org.bot_id}X{i}"))
            org.rows[workspace] = token
            self._state.uninstalled.add((app_id, workspace))
            self._state.org_wide.add((app_id, workspace))
        apps = tuple(dataclasses.replace(a, installations=tuple(rows)) if a is app else a for a in topo.apps)
        self._state.topology = dataclasses.replace(topo, apps=apps)
        self._by_app[app_id] = self._by_token[org.token] = org
        for team in grant:
            self._grant(org, team)
        return org

    async def grant(self, app_id: str, team: str) -> None:
        """An org admin grants the org install access to workspace ``team``."""
        org = self._by_app[app_id]
        if team not in org.granted:
            self._grant(org, team)
            await self._tell(org, "team_access_granted", [team])

    async def revoke(self, app_id: str, team: str) -> None:
        """An org admin revokes it: no event of ``team`` reaches the app, its calls are refused."""
        org = self._by_app[app_id]
        if team in org.granted:
            org.granted.discard(team)
            self._state.uninstalled.add((app_id, team))
            await self._tell(org, "team_access_revoked", [team])

    def _grant(self, org: OrgInstall, team: str) -> None:
        if team not in org.rows:
            raise ValueError(f"unknown team {team!r}")
        org.granted.add(team)
        self._state.uninstalled.discard((org.app_id, team))

    async def _tell(self, org: OrgInstall, kind: str, teams: list[str]) -> None:
        enterprise = self._state.topology.enterprise.id
        payload = {
            "token": "",
            "team_id": enterprise,  # [infer] an org-level event names the org
            "enterprise_id": enterprise,
            "api_app_id": org.app_id,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(6).upper(),
            "event_time": int(time.time()),
            "event": {"type": kind, "team_ids": teams, "event_ts": self._state.clock.next()},
            "authorizations": [self.authorization(org.app_id)],
            "is_ext_shared_channel": False,
        }
        org.sent.append(payload)
        await self._fanout.to_app(org.app_id, payload)

    def authorization(self, app_id: str) -> dict[str, Any]:
        """``authorizations[0]`` of an event for the org install (slack-protocol-notes.md C, D)."""
        org = self._by_app[app_id]
        enterprise = self._state.topology.enterprise.id
        return {
            "enterprise_id": enterprise,
            "team_id": None,
            "user_id": org.bot_user_id,
            "is_bot": True,
            "is_enterprise_install": True,
        }

    # -- the org token on the Web API ----------------------------------------------------------

    def acting(self, token: str, method: str, args: dict[str, Any]) -> TokenInfo | None:
        """Who the org token acts as for this call (None: not an org token)."""
        org = self._by_token.get(token)
        if org is None:
            return None
        if token in self._state.revoked:
            raise ApiError("token_revoked")
        app = self._state.topology.app_by_id[org.app_id]
        team = args.get("team_id")
        if not team:
            if method in ORG_LEVEL:
                return TokenInfo(token, "bot", user_id=org.bot_user_id, app=app)
            raise ApiError("missing_argument")
        if team not in org.granted:
            raise ApiError("team_access_not_granted")
        return dataclasses.replace(self._state.tokens[org.rows[str(team)]], token=token)

    def _auth_test(self, plain: Handler) -> Handler:
        async def auth_test(call: Call) -> dict[str, Any]:
            org = self._by_token.get(call.token.token)
            if org is None:
                return await plain(call)
            if call.token.team_id is not None:
                return await plain(call) | {"is_enterprise_install": True}
            enterprise = self._state.topology.enterprise
            return {
                "url": f"https://{enterprise.id.lower()}.enterprise.slack.com/",
                "team": enterprise.name,
                "team_id": enterprise.id,
                "enterprise_id": enterprise.id,
                "user": self._state.topology.app_by_id[org.app_id].name,
                "user_id": org.bot_user_id,
                "bot_id": org.bot_id,
                "is_enterprise_install": True,
            }

        return auth_test

    async def teams_list(self, call: Call) -> dict[str, Any]:
        """``auth.teams.list``: the workspaces the token can act in, ``limit`` a page."""
        org = self._by_token.get(call.token.token)
        teams = sorted(org.granted) if org is not None else [str(call.token.team_id)]
        try:
            limit = max(1, int(call.opt("limit") or 100))
            start = int(call.opt("cursor") or 0)
        except ValueError:
            raise ApiError("invalid_cursor") from None
        page = teams[start : start + limit]
        names = self._state.topology.team_by_id
        more = str(start + limit) if start + limit < len(teams) else ""
        return {
            "teams": [{"id": t, "name": names[t].name} for t in page],
            "response_metadata": {"next_cursor": more},
        }
