"""Things that happen in the org (posts, edits, deletes, joins) and their delivery."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import render
from .delivery import Fanout, constant
from .model import BotRef, Conversation, User
from .state import Message, OrgState


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
        )
        self._state.messages[(conv.id, msg.ts)] = msg
        await self._fanout.to_conversation(conv, lambda team: render.message_event(msg, team), source_team)
        return msg

    async def edit(self, conv: Conversation, old: Message, text: str, editor: User) -> str:
        edit_ts = self._state.clock.next()
        new = dataclasses.replace(old, text=text, edited=(editor, edit_ts))
        self._state.messages[(conv.id, old.ts)] = new
        await self._fanout.to_conversation(
            conv, lambda team: render.message_changed(old, new, edit_ts, team), old.source_team
        )
        return edit_ts

    async def delete(self, conv: Conversation, old: Message) -> str:
        delete_ts = self._state.clock.next()
        del self._state.messages[(conv.id, old.ts)]
        await self._fanout.to_conversation(
            conv, lambda team: render.message_deleted(old, delete_ts, team), old.source_team
        )
        return delete_ts

    async def add_bot(self, conv: Conversation, team: str) -> None:
        self._state.bot_teams[conv.id].add(team)
        bots = [b for b in self._state.topology.bots_on(team) if self._state.is_installed(b)]
        state = self._state
        # channel_joined/group_joined is RTM-only; member_joined_channel goes to both transports
        await self._fanout.to_rtm_only(bots, lambda t: render.channel_joined(state, conv, t))
        for bot in bots:
            event = render.member_joined(state, conv, bot)
            await self._fanout.to_bots([bot], constant(event), team, conv.id)
