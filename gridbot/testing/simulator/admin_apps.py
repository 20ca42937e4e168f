"""admin.apps.*: app approvals by org admins, with the documented argument rules and errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .model import AppRequest, BotRef
from .state import OrgState, TokenKind
from .webapi import ApiError, Call, WebApi

USER_ONLY: frozenset[TokenKind] = frozenset({"user"})
MAX_UNINSTALL_TEAMS = 100


class AdminApps:
    """Resolutions per (team or enterprise id, app id) and the state of each app request."""

    def __init__(self, state: OrgState, uninstall: Callable[[list[BotRef]], Awaitable[None]]) -> None:
        self._state = state
        self._uninstall = uninstall
        topo = state.topology
        self.requests: dict[str, AppRequest] = {r.id: r for r in topo.app_requests}
        self.resolved: dict[str, str] = {}  # request id -> "approved" | "restricted"
        self.resolutions: dict[tuple[str, str], str] = {}
        self._apps = {a.id for a in topo.apps} | {r.app_id for r in topo.app_requests}

    def register(self, api: WebApi) -> None:
        api.add("admin.apps.approve", self.approve, USER_ONLY)
        api.add("admin.apps.restrict", self.restrict, USER_ONLY)
        # Slack's name is clearResolution (slack_sdk's admin_apps_clearResolution); accept both
        api.add("admin.apps.clearResolution", self.clear_resolution, USER_ONLY)
        api.add("admin.apps.clear_resolution", self.clear_resolution, USER_ONLY)
        api.add("admin.apps.uninstall", self.uninstall, USER_ONLY)
        api.add("admin.apps.requests.list", self.requests_list, USER_ONLY)

    async def approve(self, call: Call) -> dict[str, Any]:
        return self._resolve(call, "approved")

    async def restrict(self, call: Call) -> dict[str, Any]:
        return self._resolve(call, "restricted")

    def _resolve(self, call: Call, resolution: str) -> dict[str, Any]:
        _require_admin(call)
        scope = self._scope(call)
        app_id, request = self._target(call)
        enterprise = self._state.topology.enterprise.id
        if resolution == "approved" and self.resolutions.get((enterprise, app_id)) == "restricted":
            raise ApiError("app_restricted_org_wide")
        self.resolutions[(scope, app_id)] = resolution
        # Resolving an app also resolves the pending requests it answers.
        for req in self.requests.values():
            if req.id in self.resolved:
                continue
            if req is request or (
                request is None and req.app_id == app_id and scope in (req.team, enterprise)
            ):
                self.resolved[req.id] = resolution
        return {}

    async def clear_resolution(self, call: Call) -> dict[str, Any]:
        _require_admin(call)
        app_id = call.arg("app_id")
        scope = self._scope(call)
        if app_id not in self._apps:
            raise ApiError("invalid_app_id")
        if self.resolutions.pop((scope, app_id), None) is None:
            raise ApiError("no_resolution_found")
        return {}

    async def uninstall(self, call: Call) -> dict[str, Any]:
        _require_admin(call)
        topo = self._state.topology
        app = topo.app_by_id.get(call.arg("app_id"))
        if app is None:
            raise ApiError("app_not_found")
        enterprise_id = call.opt("enterprise_id")
        team_ids = _id_list(call.args.get("team_ids"))
        if (enterprise_id is None) == (not team_ids):
            raise ApiError("specify_enterprise_or_teams")
        if enterprise_id is not None:
            if enterprise_id != topo.enterprise.id:
                raise ApiError("enterprise_not_found")
            teams = [t.id for t in topo.teams]
        else:
            if len(team_ids) > MAX_UNINSTALL_TEAMS:
                raise ApiError("too_many_teams")
            if any(t not in topo.team_by_id for t in team_ids):
                raise ApiError("teams_not_found")
            teams = team_ids
        bots = [
            b for b in topo.bots if b.app.id == app.id and b.team in teams and self._state.is_installed(b)
        ]
        await self._uninstall(bots)
        return {}

    async def requests_list(self, call: Call) -> dict[str, Any]:
        _require_admin(call)
        topo = self._state.topology
        team_id = call.opt("team_id")
        if team_id is not None and team_id not in topo.team_by_id:
            raise ApiError("team_not_found")
        pending = [
            r for r in self.requests.values() if r.id not in self.resolved and team_id in (None, r.team)
        ]
        return {
            "app_requests": [self._request_object(r) for r in pending],
            "response_metadata": {"next_cursor": ""},
        }

    def _request_object(self, req: AppRequest) -> dict[str, Any]:
        topo = self._state.topology
        team = topo.team_by_id[req.team]
        user = topo.user_by_id[req.user]
        app = topo.app_by_id.get(req.app_id)
        return {
            "id": req.id,
            "app": {"id": req.app_id, "name": req.app_name or (app.name if app else "")},
            "user": {"id": user.id, "name": user.name, "email": ""},
            "team": {"id": team.id, "name": team.name, "domain": team.domain},
            "scopes": [
                {"name": s, "description": "", "is_sensitive": False, "token_type": "bot"} for s in req.scopes
            ],
            "previous_resolution": None,
            "is_user_app_collaborator": False,
            "message": "",
            "date_created": 0,
        }

    def _scope(self, call: Call) -> str:
        """Exactly one of team_id / enterprise_id."""
        team_id, enterprise_id = call.opt("team_id"), call.opt("enterprise_id")
        if team_id is not None and enterprise_id is not None:
            raise ApiError("too_many_teams_provided")
        if team_id is None and enterprise_id is None:
            raise ApiError("invalid_arguments")
        topo = self._state.topology
        if team_id is not None:
            if team_id not in topo.team_by_id:
                raise ApiError("team_not_found")
            return team_id
        if enterprise_id != topo.enterprise.id:
            raise ApiError("team_not_found")
        return topo.enterprise.id

    def _target(self, call: Call) -> tuple[str, AppRequest | None]:
        """Exactly one of app_id / request_id, resolved to the app and the open request."""
        app_id, request_id = call.opt("app_id"), call.opt("request_id")
        if app_id is not None and request_id is not None:
            raise ApiError("too_many_ids_provided")
        if request_id is not None:
            request = self.requests.get(request_id)
            if request is None:
                raise ApiError("invalid_request_id")
            if request.id in self.resolved:
                raise ApiError("request_already_resolved")
            return request.app_id, request
        if app_id is None:
            raise ApiError("request_id_or_app_id_is_required")
        if app_id not in self._apps:
            raise ApiError("invalid_app_id")
        return app_id, None


def _require_admin(call: Call) -> None:
    user = call.token.user
    if user is None or not (user.is_admin or user.is_owner):
        raise ApiError("not_an_admin")


def _id_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return []
