"""``response_url``: the URL each interaction carries, and what a post to it shows the user.

platform-2026.md, "Interactivity": "``response_url`` accepts up to 5 posts within 30 minutes
(``response_type`` ``ephemeral``/``in_channel``, ``replace_original``, ``delete_original``)".
A sixth post, or one after 30 minutes, is refused (404, ``used_url`` / ``expired_url``). An
ephemeral answer is seen by the user only (``sim.ephemeral``); ``in_channel`` posts a message as
the app's bot; ``replace_original`` / ``delete_original`` act on the message with the button.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .actions import OrgActions
from .model import App, BotRef, Conversation
from .records import Journal, PostedMessage, Recent
from .state import OrgState
from .translate import canonical_text

MAX_USES = 5
LIFETIME = 30 * 60.0
KEEP_URLS = 10_000


@dataclass(frozen=True)
class Seen:
    """Something a user saw because of an interaction: ``kind`` is ``message`` (an answer only
    they see), ``view_errors`` (``detail``: the errors by block id), ``options``, or ``error``
    (Slack's own, when the app did not answer in time)."""

    user: str
    kind: str
    text: str
    blocks: list[Any] | None
    detail: dict[str, Any]
    time: float


@dataclass
class _Url:
    app: App
    user: str
    channel: str
    message_ts: str | None
    created: float
    uses: int = 0


class Responses:
    def __init__(
        self,
        state: OrgState,
        actions: OrgActions,
        journal: Journal,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._actions = actions
        self._journal = journal
        self._clock = clock
        self.base = ""  # http://host:port, set once the server listens
        self.seen: Recent[Seen] = Recent()
        self.posts: Recent[dict[str, Any]] = Recent()  # every body posted to a response_url
        self._urls: dict[str, _Url] = {}

    def url(self, app: App, user: str, channel: str, message_ts: str | None) -> str:
        token = secrets.token_urlsafe(18)
        now = self._clock()
        if len(self._urls) >= KEEP_URLS:  # a long run: forget the expired ones
            self._urls = {t: u for t, u in self._urls.items() if now - u.created <= LIFETIME}
        self._urls[token] = _Url(app, user, channel, message_ts, now)
        return f"{self.base}/respond/{token}"

    async def handle(self, request: web.Request) -> web.Response:
        found = self._urls.get(request.match_info["token"])
        if found is None or self._clock() - found.created > LIFETIME:
            return _refuse("expired_url")
        if found.uses >= MAX_USES:
            return _refuse("used_url")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _refuse("invalid_payload", 400)
        if not isinstance(body, dict):
            return _refuse("invalid_payload", 400)
        found.uses += 1
        self.posts.append(body)
        conv = self._state.conversation(found.channel)
        assert conv is not None
        original = self._state.messages.get(conv.id, found.message_ts) if found.message_ts else None
        bot = (
            original.bot if original is not None and original.bot is not None else self._bot(conv, found.app)
        )
        if body.get("delete_original"):
            if original is None:
                return _refuse("message_not_found")
            await self._actions.delete(conv, original)
            return _ok()
        if not body.get("text") and not body.get("blocks"):
            return _refuse("no_text", 400)
        if body.get("replace_original") and original is not None:
            text = canonical_text(self._state.topology, str(body.get("text") or ""), bot.team)
            await self._actions.edit(conv, original, text, bot, body.get("blocks"))
            return _ok()
        await self.show(found.user, conv, bot, body, in_channel=body.get("response_type") == "in_channel")
        return _ok()

    async def show(
        self,
        user: str,
        conv: Conversation,
        bot: BotRef,
        body: dict[str, Any],
        *,
        in_channel: bool,
        how: str = "response_url",
    ) -> None:
        """An answer to ``user`` (ephemeral) or to the conversation (``in_channel``: a message
        of the app's bot, which every member sees)."""
        text, blocks = str(body.get("text") or ""), body.get("blocks")
        ts = self._state.clock.next()
        if in_channel:
            stored = canonical_text(self._state.topology, text, bot.team)
            ts = (await self._actions.post(conv, stored, source_team=bot.team, bot=bot, blocks=blocks)).ts
        record = PostedMessage(
            team_id=bot.team,
            channel=conv.id,
            text=text,
            blocks=blocks,
            thread_ts=body.get("thread_ts"),
            ts=ts,
            bot_user_id=bot.installation.bot_user_id,
            time=time.time(),
            user=None if in_channel else user,
        )
        if in_channel:
            self._journal.posted.append(record)
        else:
            self._journal.ephemeral.append(record)
            self.seen.append(Seen(user, "message", text, blocks, {"via": how}, time.time()))

    def _bot(self, conv: Conversation, app: App) -> BotRef:
        bots = [b for b in self._state.bots_in(conv) if b.app.id == app.id]
        return bots[0] if bots else next(b for b in self._state.topology.bots if b.app.id == app.id)


def _ok() -> web.Response:
    return web.Response(body=b'{"ok":true}', content_type="application/json")


def _refuse(error: str, status: int = 404) -> web.Response:
    return web.Response(
        body=orjson.dumps({"ok": False, "error": error}), status=status, content_type="application/json"
    )
