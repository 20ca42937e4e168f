"""Messages written in the org (posts, edits, deletes) and their delivery."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import render
from .delivery import Fanout
from .messages import Message
from .model import BotRef, Conversation, User
from .state import OrgState


class OrgActions:
    def __init__(self, state: OrgState, fanout: Fanout) -> None:
        self._state = state
        self._fanout = fanout

    async def post(
        self,
        conv: Conversation,
        text: str,
        *,
        source_team: str,
        user: User | None = None,
        bot: BotRef | None = None,
        thread_ts: str | None = None,
        blocks: list[Any] | None = None,
        subtype: str | None = None,
        inviter: User | None = None,
    ) -> Message:
        msg = Message(
            channel=conv.id,
            ts=self._state.clock.next(),
            text=text,
            source_team=source_team,
            user=user,
            bot=bot,
            thread_ts=thread_ts,
            blocks=blocks,
            subtype=subtype,
            inviter=inviter,
        )
        self._state.add_message(msg)
        topo = self._state.topology
        await self._fanout.to_conversation(
            conv, lambda viewer: render.message_event(topo, msg, viewer), source_team, text=text
        )
        return msg

    async def edit(
        self,
        conv: Conversation,
        old: Message,
        text: str,
        editor: User | BotRef,
        blocks: list[Any] | None = None,
    ) -> tuple[str, Message]:
        edit_ts = self._state.clock.next()
        new = dataclasses.replace(
            old, text=text, edited=(editor, edit_ts), blocks=blocks if blocks is not None else old.blocks
        )
        self._state.messages.replace(new)
        topo = self._state.topology
        await self._fanout.to_conversation(
            conv,
            lambda viewer: render.message_changed(topo, old, new, edit_ts, viewer),
            old.source_team,
            text=text,
        )
        return edit_ts, new

    async def delete(self, conv: Conversation, old: Message) -> str:
        delete_ts = self._state.clock.next()
        self._state.messages.remove(conv.id, old.ts)
        topo = self._state.topology
        await self._fanout.to_conversation(
            conv, lambda viewer: render.message_deleted(topo, old, delete_ts, viewer), old.source_team
        )
        return delete_ts
