"""The Web API methods that list things, with cursor pagination: conversations.list,
conversations.members, conversations.history, conversations.replies, users.list and
apps.event.authorizations.list.

Pagination as Slack documents it (docs.slack.dev/apis/web-api/pagination): ``limit`` and an opaque
``cursor``; ``response_metadata.next_cursor`` is ``""`` on the last page. Visibility follows
webapi.WebApi.visible: a private channel, MPDM or DM does not exist for a non-member.
enterprise-grid-developer-guide, "Handling unknown users gracefully": users from other teams are
not in users.list ("You won't find users from other teams in the payloads of these methods").
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import render
from .delivery import read_event_context
from .messages import Message
from .state import OrgState, TokenKind
from .webapi import BOT_OR_USER, ApiError, Call, WebApi

T = TypeVar("T")
APP_ONLY: frozenset[TokenKind] = frozenset({"app"})
TYPES = {"public_channel": ("channel",), "private_channel": ("private",), "mpim": ("mpim",), "im": ("im",)}


def _limit(call: Call, default: int, most: int) -> int:
    raw = call.opt("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("invalid_limit") from None
    return default if value < 1 else min(value, most)


def _encode(prefix: str, key: str) -> str:
    return base64.b64encode(f"{prefix}:{key}".encode()).decode()


def page(
    call: Call,
    items: Sequence[T],
    key: Callable[[T], str],
    prefix: str,
    *,
    default: int = 100,
    most: int = 1000,
    descending: bool = False,
) -> tuple[list[T], dict[str, str]]:
    """One page of ``items`` (sorted by ``key``); the cursor names the next page's first key, so a
    page stays right when items before it come and go."""
    start = 0
    cursor = call.opt("cursor")
    if cursor is not None:
        try:
            found_prefix, _, after = base64.b64decode(cursor, validate=True).decode().partition(":")
        except ValueError:
            raise ApiError("invalid_cursor") from None
        if found_prefix != prefix:
            raise ApiError("invalid_cursor")
        start = next(
            (n for n, item in enumerate(items) if (key(item) <= after if descending else key(item) >= after)),
            len(items),
        )
    limit = _limit(call, default, most)
    chunk = list(items[start : start + limit])
    rest = items[start + limit : start + limit + 1]
    return chunk, {"next_cursor": _encode(prefix, key(rest[0])) if rest else ""}


class Listing:
    def __init__(self, state: OrgState, api: WebApi) -> None:
        self._state = state
        self._api = api
        api.add("conversations.list", self.conversations_list, BOT_OR_USER)
        api.add("conversations.members", self.conversations_members, BOT_OR_USER)
        api.add("conversations.history", self.conversations_history, BOT_OR_USER)
        api.add("conversations.replies", self.conversations_replies, BOT_OR_USER)
        api.add("users.list", self.users_list, BOT_OR_USER)
        api.add("apps.event.authorizations.list", self.authorizations_list, APP_ONLY)

    async def conversations_list(self, call: Call) -> dict[str, Any]:
        kinds = {
            k for t in (call.opt("types") or "public_channel").split(",") for k in TYPES.get(t.strip(), ())
        }
        if not kinds:
            raise ApiError("invalid_types")
        visible = []
        for conv in sorted(self._state.topology.conversations, key=lambda c: c.id):
            if conv.kind not in kinds:
                continue
            try:
                self._api.visible(call, conv.id)
            except ApiError:
                continue
            visible.append(conv)
        chunk, meta = page(call, visible, lambda c: c.id, "team")
        viewer = call.token.viewer
        channels = [
            render.conversation(self._state, c, viewer, is_member=self._api.is_member(call, c)) for c in chunk
        ]
        return {"channels": channels, "response_metadata": meta}

    async def conversations_members(self, call: Call) -> dict[str, Any]:
        conv = self._api.visible(call)
        ids = sorted(render.member_ids(self._state, conv, call.token.viewer))
        chunk, meta = page(call, ids, lambda i: i, "member")
        return {"members": chunk, "response_metadata": meta}

    def _readable(self, call: Call) -> str:
        conv = self._api.visible(call)
        if call.token.bot is not None and not self._api.is_member(call, conv):
            raise ApiError("not_in_channel")  # a bot reads only what it was invited to
        return conv.id

    async def conversations_history(self, call: Call) -> dict[str, Any]:
        channel = self._readable(call)
        stored = list(self._state.messages.newest_first(channel))
        replies: dict[str, list[Message]] = {}
        for m in stored:
            if m.thread_ts is not None and m.thread_ts != m.ts:
                replies.setdefault(m.thread_ts, []).append(m)
        top = [m for m in stored if m.thread_ts is None or m.thread_ts == m.ts]
        top = _window(call, top)
        chunk, meta = page(call, top, lambda m: m.ts, "next_ts", default=100, most=999, descending=True)
        topo, viewer = self._state.topology, call.token.viewer
        messages = []
        for m in chunk:
            body = render.message_body(topo, m, viewer)
            thread = replies.get(m.ts)
            if thread:
                body["thread_ts"] = m.ts
                body["reply_count"] = len(thread)
                body["latest_reply"] = thread[0].ts
            messages.append(body)
        return {
            "messages": messages,
            "has_more": bool(meta["next_cursor"]),
            "pin_count": 0,
            "response_metadata": meta,
        }

    async def conversations_replies(self, call: Call) -> dict[str, Any]:
        channel = self._readable(call)
        thread = self._state.messages.thread(channel, call.arg("ts"))
        if not thread:
            raise ApiError("thread_not_found")
        thread = _window(call, thread)
        chunk, meta = page(call, thread, lambda m: m.ts, "next_ts", default=1000, most=1000)
        topo, viewer = self._state.topology, call.token.viewer
        return {
            "messages": [render.message_body(topo, m, viewer) for m in chunk],
            "has_more": bool(meta["next_cursor"]),
            "response_metadata": meta,
        }

    async def users_list(self, call: Call) -> dict[str, Any]:
        topo, viewer = self._state.topology, call.token.viewer
        team = call.token.team_id
        people = [render.user_object(topo, u, viewer) for u in topo.users if team in u.teams]
        bots = [render.bot_user_object(b) for b in topo.bots_on(team or "") if self._state.is_installed(b)]
        members = sorted(people + bots, key=lambda u: str(u["id"]))
        chunk, meta = page(call, members, lambda u: str(u["id"]), "user", default=200)
        return {"members": chunk, "cache_ts": 0, "response_metadata": meta}

    async def authorizations_list(self, call: Call) -> dict[str, Any]:
        """Every installation of the app an event is visible to (slack-protocol-notes.md C: an
        event in a shared channel arrives once per app; this lists the rest)."""
        app = call.token.app
        assert app is not None
        context = read_event_context(call.arg("event_context"))
        if context is None or context.get("aid") != app.id:
            raise ApiError("invalid_event_context")
        state = self._state
        conv = state.conversation(str(context.get("cid") or ""))
        if conv is not None:
            bots = [b for b in state.bots_in(conv) if b.app.id == app.id]
        else:
            bots = [b for b in state.topology.bots_on(str(context.get("tid"))) if state.is_live(b)]
            bots = [b for b in bots if b.app.id == app.id]
        enterprise = state.topology.enterprise.id
        auths = [
            {
                "enterprise_id": enterprise,
                "team_id": b.team,
                "user_id": b.installation.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
            for b in sorted(bots, key=lambda b: b.team)
        ]
        chunk, meta = page(call, auths, lambda a: str(a["team_id"]), "team")
        return {"authorizations": chunk, "response_metadata": meta}


def _window(call: Call, messages: list[Message]) -> list[Message]:
    """``oldest`` / ``latest`` bounds (exclusive unless ``inclusive``)."""
    oldest, latest = call.opt("oldest"), call.opt("latest")
    if oldest is None and latest is None:
        return messages
    inclusive = (call.opt("inclusive") or "").lower() in ("1", "true")
    try:
        lo, hi = float(oldest or 0), float(latest) if latest else float("inf")
    except ValueError:
        raise ApiError("invalid_ts_oldest" if latest is None else "invalid_ts_latest") from None

    def inside(m: Message) -> bool:
        ts = float(m.ts)
        return (lo <= ts <= hi) if inclusive else (lo < ts < hi)

    return [m for m in messages if inside(m)]
