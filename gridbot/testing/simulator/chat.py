"""chat.postMessage, chat.postEphemeral, chat.update and reactions.add."""

from __future__ import annotations

import time
from typing import Any

import orjson

from . import render
from .actions import OrgActions
from .records import Journal, PostedMessage, Reaction
from .state import OrgState
from .translate import canonical_text, resolve_user
from .webapi import BOT_OR_USER, ApiError, Call, WebApi


class Chat:
    def __init__(self, state: OrgState, actions: OrgActions, journal: Journal, api: WebApi) -> None:
        self._state = state
        self._actions = actions
        self._journal = journal
        self._api = api
        api.add("chat.postMessage", self.post_message, BOT_OR_USER)
        api.add("chat.postEphemeral", self.post_ephemeral, BOT_OR_USER)
        api.add("chat.update", self.update, BOT_OR_USER)
        api.add("reactions.add", self.reactions_add, BOT_OR_USER)

    def _text(self, call: Call) -> tuple[str, list[Any] | None]:
        text = call.opt("text") or ""
        blocks = _blocks(call.args.get("blocks"))
        if not text and not blocks:
            raise ApiError("no_text")
        assert call.token.team_id is not None
        # written with the caller's ids, stored with enterprise ids (translate.py)
        return canonical_text(self._state.topology, text, call.token.team_id), blocks

    async def post_message(self, call: Call) -> dict[str, Any]:
        conv = self._api.visible(call)
        tok = call.token
        assert tok.team_id is not None
        if not self._api.is_member(call, conv):
            raise ApiError("not_in_channel")
        text, blocks = self._text(call)
        thread_ts = call.opt("thread_ts")
        source = tok.team_id if tok.user is None else self._state.source_team(tok.user, conv)
        msg = await self._actions.post(
            conv,
            text,
            source_team=source,
            user=tok.user,
            bot=tok.bot,
            thread_ts=thread_ts,
            blocks=blocks,
        )
        self._journal.posted.append(
            PostedMessage(
                team_id=tok.team_id,
                channel=conv.id,
                text=call.opt("text") or "",
                blocks=blocks,
                thread_ts=thread_ts,
                ts=msg.ts,
                bot_user_id=tok.user_id if tok.bot else None,
                time=time.time(),
            )
        )
        body = render.message_body(self._state.topology, msg, tok.viewer)
        return {"channel": conv.id, "ts": msg.ts, "message": body}

    async def post_ephemeral(self, call: Call) -> dict[str, Any]:
        conv = self._api.visible(call)
        tok = call.token
        if tok.bot is not None and not self._state.is_member(tok.bot, conv):
            raise ApiError("not_in_channel")
        user = resolve_user(self._state.topology, call.arg("user"), tok.team_id)
        if user is None or user.id not in conv.members:
            raise ApiError("user_not_in_channel")
        _, blocks = self._text(call)
        ts = self._state.clock.next()
        self._journal.ephemeral.append(
            PostedMessage(
                team_id=tok.team_id,
                channel=conv.id,
                text=call.opt("text") or "",
                blocks=blocks,
                thread_ts=call.opt("thread_ts"),
                ts=ts,
                bot_user_id=tok.user_id if tok.bot else None,
                time=time.time(),
                user=user.id,
            )
        )
        return {"message_ts": ts}

    async def update(self, call: Call) -> dict[str, Any]:
        """Only a message's author may update it; the members see ``message_changed``."""
        conv = self._api.visible(call)
        old = self._state.messages.get(conv.id, call.arg("ts"))
        if old is None:
            raise ApiError("message_not_found")
        tok = call.token
        editor = tok.bot if tok.bot is not None else tok.user
        mine = (old.bot is not None and tok.bot is not None and old.bot.key == tok.bot.key) or (
            old.user is not None and tok.user is not None and old.user.id == tok.user.id
        )
        if editor is None or not mine or old.subtype is not None:
            raise ApiError("cant_update_message")
        text, blocks = self._text(call)
        _, new = await self._actions.edit(conv, old, text, editor, blocks)
        body = render.message_body(self._state.topology, new, tok.viewer)
        return {"channel": conv.id, "ts": old.ts, "text": body["text"], "message": body}

    async def reactions_add(self, call: Call) -> dict[str, Any]:
        conv = self._api.visible(call)
        timestamp, name = call.arg("timestamp"), call.arg("name").strip(":")
        if self._state.messages.get(conv.id, timestamp) is None:
            raise ApiError("message_not_found")
        tok = call.token
        if not self._state.messages.react(conv.id, timestamp, name, tok.user_id):
            raise ApiError("already_reacted")
        self._journal.reactions.append(
            Reaction(tok.team_id, conv.id, timestamp, name, tok.user_id, time.time())
        )
        return {}


def _blocks(value: Any) -> list[Any] | None:
    if isinstance(value, str) and value:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ApiError("invalid_blocks") from None
    if value is None or value == "":
        return None
    if not isinstance(value, list):
        raise ApiError("invalid_blocks")
    return value
