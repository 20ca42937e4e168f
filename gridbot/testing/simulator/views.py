"""Modals: trigger ids, views.open / views.push / views.update, and each user's view stack.

platform-2026.md, "Interactivity": "``trigger_id`` is valid for 3 s (views.open/push need it)".
A trigger is issued with each interaction the simulator sends, belongs to that interaction's app,
and is spent by the first call that uses it (Slack answers ``exchanged_trigger_id`` after).
A modal holds at most 3 views (``views.push`` answers ``push_limit_reached`` beyond).
``response_action`` ``update`` / ``push`` / ``clear`` and the empty ack of a submission act on
the same stack (:mod:`.interactivity`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .model import App
from .records import Recent
from .state import OrgState
from .webapi import BOT_OR_USER, ApiError, Call, WebApi

TRIGGER_TTL = 3.0
MAX_STACK = 3
KEEP_TRIGGERS = 10_000


@dataclass
class Trigger:
    app_id: str
    user_id: str
    team_id: str
    issued: float
    used: bool = False


@dataclass
class Modal:
    """One user's open modal: the views stacked in it, the root first."""

    app: App
    user_id: str
    views: list[dict[str, Any]] = field(default_factory=list)


class Views:
    def __init__(self, state: OrgState, api: WebApi, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._clock = clock
        self.triggers: dict[str, Trigger] = {}
        self.modals: dict[str, Modal] = {}  # user id -> the modal they have open
        self.opened: Recent[dict[str, Any]] = Recent()  # every view opened or pushed, in order
        api.add("views.open", self.open, BOT_OR_USER)
        api.add("views.push", self.push, BOT_OR_USER)
        api.add("views.update", self.update, BOT_OR_USER)

    # -- triggers -----------------------------------------------------------------------------

    def issue(self, app_id: str, user_id: str, team_id: str) -> str:
        """A new trigger id for one interaction (Slack's shape: ``<n>.<n>.<hex>``)."""
        trigger = f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        now = self._clock()
        if len(self.triggers) >= KEEP_TRIGGERS:  # a long run: forget the expired ones
            self.triggers = {t: v for t, v in self.triggers.items() if now - v.issued <= TRIGGER_TTL}
        self.triggers[trigger] = Trigger(app_id, user_id, team_id, now)
        return trigger

    def _spend(self, call: Call) -> Trigger:
        trigger = self.triggers.get(call.arg("trigger_id"))
        app = call.token.bot.app if call.token.bot is not None else call.token.app
        if trigger is None or app is None or trigger.app_id != app.id:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self._clock() - trigger.issued > TRIGGER_TTL:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    # -- the API ------------------------------------------------------------------------------

    async def open(self, call: Call) -> dict[str, Any]:
        trigger = self._spend(call)
        app = self._app(trigger.app_id)
        view = self.make(call, app, trigger.team_id, root=None, previous=None)
        view["app_installed_team_id"] = call.token.team_id  # the installation that opened it
        self.modals[trigger.user_id] = Modal(app, trigger.user_id, [view])
        self.opened.append(view)
        return {"view": view}

    async def push(self, call: Call) -> dict[str, Any]:
        trigger = self._spend(call)
        modal = self.modals.get(trigger.user_id)
        if modal is None or not modal.views:
            raise ApiError("not_found")
        if len(modal.views) >= MAX_STACK:
            raise ApiError("push_limit_reached")
        top = modal.views[-1]
        view = self.make(call, modal.app, trigger.team_id, root=modal.views[0]["id"], previous=top["id"])
        view["app_installed_team_id"] = top["app_installed_team_id"]
        modal.views.append(view)
        self.opened.append(view)
        return {"view": view}

    async def update(self, call: Call) -> dict[str, Any]:
        view_id = call.opt("view_id")
        found = self.find(view_id) if view_id else None
        if found is None:
            raise ApiError("not_found")
        modal, index = found
        old = modal.views[index]
        given_hash = call.opt("hash")
        if given_hash is not None and given_hash != old["hash"]:
            raise ApiError("hash_conflict")
        new = self.make(call, modal.app, old["team_id"], root=old["root_view_id"], previous=None)
        new["id"], new["previous_view_id"] = old["id"], old.get("previous_view_id")
        new["app_installed_team_id"] = old["app_installed_team_id"]
        modal.views[index] = new
        return {"view": new}

    # -- the stack ----------------------------------------------------------------------------

    def find(self, view_id: str) -> tuple[Modal, int] | None:
        for modal in self.modals.values():
            for index, view in enumerate(modal.views):
                if view["id"] == view_id:
                    return modal, index
        return None

    def top(self, user_id: str) -> dict[str, Any] | None:
        modal = self.modals.get(user_id)
        return modal.views[-1] if modal is not None and modal.views else None

    def replace_top(self, user_id: str, view: dict[str, Any], team_id: str) -> None:
        modal = self.modals[user_id]
        old = modal.views[-1]
        new = self.render(
            view, modal.app, team_id, root=old["root_view_id"], previous=old.get("previous_view_id")
        )
        new["id"], new["app_installed_team_id"] = old["id"], old["app_installed_team_id"]
        modal.views[-1] = new

    def push_view(self, user_id: str, view: dict[str, Any], team_id: str) -> None:
        modal = self.modals[user_id]
        if len(modal.views) >= MAX_STACK:
            return  # Slack refuses it; the submission is shown an error instead (not modelled)
        root, top = modal.views[0]["id"], modal.views[-1]["id"]
        new = self.render(view, modal.app, team_id, root=root, previous=top)
        new["app_installed_team_id"] = modal.views[-1]["app_installed_team_id"]
        modal.views.append(new)
        self.opened.append(new)

    def pop(self, user_id: str) -> dict[str, Any] | None:
        modal = self.modals.get(user_id)
        if modal is None or not modal.views:
            return None
        view = modal.views.pop()
        if not modal.views:
            del self.modals[user_id]
        return view

    def clear(self, user_id: str) -> None:
        self.modals.pop(user_id, None)

    # -- views --------------------------------------------------------------------------------

    def make(
        self, call: Call, app: App, team_id: str, *, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        raw = call.args.get("view")
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ApiError("invalid_arguments") from None
        if not isinstance(raw, dict) or raw.get("type") != "modal" or not isinstance(raw.get("title"), dict):
            raise ApiError("invalid_arguments")
        return self.render(raw, app, team_id, root=root, previous=previous)

    def render(
        self, raw: dict[str, Any], app: App, team_id: str, *, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        """A view as Slack returns it: the app's fields plus id, hash, state and who owns it."""
        view_id = "V" + secrets.token_hex(5).upper()
        installation = next((i for i in app.installations if i.team == team_id), None)
        return {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "title": raw.get("title"),
            "submit": raw.get("submit"),
            "close": raw.get("close"),
            "blocks": list(raw.get("blocks") or []),
            "private_metadata": str(raw.get("private_metadata") or ""),
            "callback_id": str(raw.get("callback_id") or ""),
            "external_id": str(raw.get("external_id") or ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(raw.get("clear_on_close")),
            "notify_on_close": bool(raw.get("notify_on_close")),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": app.id,
            "app_installed_team_id": team_id,  # the caller sets the installation's
            "bot_id": installation.bot_id if installation else None,
        }

    def _app(self, app_id: str) -> App:
        return self._state.topology.app_by_id[app_id]
