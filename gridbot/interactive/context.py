"""What an interactive handler gets: :class:`InteractiveContext`, a :class:`~gridbot.context.Context`
with the payload (``ctx.interaction``), its ack, and the ways to answer it.

- ``await ctx.ack(...)``: the answer Slack waits for (or return it; see :mod:`gridbot.interactive.ack`);
- ``await ctx.respond(...)``: a message through the payload's ``response_url`` (ephemeral, in
  the channel, replacing or deleting the original), no token needed;
- ``open_modal`` / ``push_modal`` (with the ``trigger_id``, valid 3 s) and ``update_modal``;
- ``await ctx.update(...)``: rewrite the message that carried the button (``chat.update``).

``client`` is the token of the installation that serves the payload, which on Grid is not
always the clicking user's team (:func:`gridbot.interactive.payload.serving_team`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from slack_sdk.errors import SlackApiError

from gridbot.context import Context
from gridbot.interactive.ack import TRIGGER_LIFETIME, Acks, Pending, TriggerExpired, ack_body
from gridbot.interactive.payload import Interaction
from gridbot.interactive.respond import respond
from gridbot.logs import get_logger

if TYPE_CHECKING:
    from gridbot.interactive.intake import Interactions

log = get_logger("gridbot.interactive")


@dataclass
class InteractiveContext(Context):
    """A :class:`Context` for one slash command, click, shortcut, submission or options request."""

    pending: Pending | None = None
    acks: Acks | None = None

    @property
    def interaction(self) -> Interaction:
        if self.pending is None:
            raise RuntimeError("this context has no interaction")
        return self.pending.interaction

    @property
    def channel(self) -> str | None:
        return self.interaction.channel_id

    @property
    def user_id(self) -> str | None:
        """The acting user (their own team may not have the app: see ``interaction.user_team_id``)."""
        return self.interaction.user_id

    @property
    def private_metadata(self) -> str:
        """The submitted or closed view's ``private_metadata``, as the opener set it."""
        return self.interaction.private_metadata

    @property
    def acked(self) -> bool:
        return self.pending is not None and self.pending.acked

    def _where(self) -> dict[str, Any]:
        route = self.pending.route if self.pending is not None else None
        return {"plugin": self.plugin, "handler": route.name if route else None, "team_id": self.team_id}

    # -- the ack ------------------------------------------------------------------------------

    async def ack(
        self,
        body: Mapping[str, Any] | None = None,
        *,
        text: str | None = None,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        in_channel: bool = False,
        errors: Mapping[str, str] | None = None,
        update: Mapping[str, Any] | None = None,
        push: Mapping[str, Any] | None = None,
        clear: bool = False,
        options: Sequence[Any] | None = None,
        option_groups: Sequence[Mapping[str, Any]] | None = None,
    ) -> bool:
        """Acknowledge now, carrying the answer Slack accepts for this kind of payload:

        - a slash command: ``text`` / ``blocks`` (an ephemeral message; ``in_channel=True`` for all);
        - a view submission: ``errors={block_id: message}``, ``update=view``, ``push=view`` or
          ``clear=True`` (``response_action``); nothing closes the modal;
        - an options request: ``options=[(label, value), ...]`` or ``option_groups``;
        - anything else: nothing. ``body`` sends a body as it is.

        Returns False if it was acked already (the deadline passed: the runtime acked empty).
        """
        pending = self.pending
        if pending is None or self.acks is None:
            raise RuntimeError("this context has no interaction to acknowledge")
        if body is None:
            built = ack_body(
                pending.interaction,
                text=text,
                blocks=blocks,
                in_channel=in_channel,
                errors=errors,
                update=update,
                push=push,
                clear=clear,
                options=options,
                option_groups=option_groups,
            )
        else:
            built = dict(body)
        if await pending.ack(built):
            self.acks.counters.by_handler += 1
            return True
        log.info("interactive.ack_ignored", reason="acked_already", **self._where())
        return False

    # -- answering ----------------------------------------------------------------------------

    async def respond(
        self,
        text: str | None = None,
        *,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        in_channel: bool = False,
        replace_original: bool = False,
        delete_original: bool = False,
        thread_ts: str | None = None,
    ) -> None:
        """Answer through the payload's ``response_url``: ephemeral (only the user sees it) unless
        ``in_channel``; ``replace_original`` rewrites the message with the button,
        ``delete_original`` removes it. At most 5 times within 30 minutes (Slack's limit)."""
        url = self.interaction.response_url
        if url is None:
            raise ValueError(f"a {self.interaction.kind} payload has no response_url")
        body: dict[str, Any] = {"response_type": "in_channel" if in_channel else "ephemeral"}
        if delete_original:
            body["delete_original"] = True
        else:
            if not text and not blocks:
                raise ValueError("a response needs text or blocks")
            body["text"] = text or ""
            if blocks is not None:
                body["blocks"] = list(blocks)
            if replace_original:
                body["replace_original"] = True
            if thread_ts is not None:
                body["thread_ts"] = thread_ts
        await respond(self.client.session, url, body)

    async def reply(
        self,
        text: str | None = None,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread: bool | None = None,
    ) -> dict[str, Any]:
        """Post in the conversation the payload came from (``chat.postMessage``)."""
        if self.channel is None:
            raise ValueError("this interaction has no conversation to reply in")
        return await self.post(self.channel, text, blocks=blocks)

    async def ephemeral(
        self, text: str | None = None, *, blocks: list[dict[str, Any]] | None = None, user: str | None = None
    ) -> None:
        """A message only ``user`` (default: the acting user) sees, where the payload came from."""
        target = user or self.user_id
        if target is None or self.channel is None:
            raise ValueError("an ephemeral message needs a conversation and a user")
        await self.client.chat_postEphemeral(
            channel=self.channel, user=target, text=text or "", blocks=blocks
        )

    async def update(
        self, text: str | None = None, *, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Rewrite the message that carried the button (``chat.update``, our bot's message)."""
        channel, ts = self.channel, self.interaction.message_ts
        if channel is None or ts is None:
            raise ValueError(f"a {self.interaction.kind} payload carries no message to update")
        response = await self.client.chat_update(
            channel=channel,
            ts=ts,
            text=text or "",
            blocks=[dict(b) for b in blocks] if blocks is not None else None,
        )
        return dict(response.data) if isinstance(response.data, dict) else {}

    # -- modals -------------------------------------------------------------------------------

    async def open_modal(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """Open ``view`` as a modal (``views.open``) with the payload's ``trigger_id``; returns
        the view Slack made (its ``id`` and ``hash``). :class:`TriggerExpired` past 3 s."""
        return await self._with_trigger("views.open", self.client.views_open, view)

    async def push_modal(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """Push ``view`` on top of the open modal (``views.push``; at most 3 deep)."""
        return await self._with_trigger("views.push", self.client.views_push, view)

    async def update_modal(
        self, view: Mapping[str, Any], *, view_id: str | None = None, hash: str | None = None
    ) -> dict[str, Any]:
        """Replace an open modal's content (``views.update``); default: the payload's view.
        ``hash`` makes Slack refuse an update based on a stale view (``hash_conflict``)."""
        target = view_id or self.interaction.view_id
        if target is None:
            raise ValueError(f"a {self.interaction.kind} payload names no view to update")
        response = await self.client.views_update(view_id=target, view=dict(view), hash=hash)
        return dict(response.get("view") or {})

    async def _with_trigger(
        self, method: str, call: Callable[..., Awaitable[Any]], view: Mapping[str, Any]
    ) -> dict[str, Any]:
        trigger = self.interaction.trigger_id
        if trigger is None:
            raise ValueError(f"a {self.interaction.kind} payload has no trigger_id to open a view with")
        age = self.acks.clock() - self.pending.received if self.acks and self.pending else 0.0
        if age >= TRIGGER_LIFETIME:
            self._expired(method, age)
        try:
            response = await call(trigger_id=trigger, view=dict(view))
        except SlackApiError as exc:
            if exc.response.get("error") == "expired_trigger_id":
                self._expired(method, age)
            raise
        return dict(response.get("view") or {})

    def _expired(self, method: str, age: float) -> NoReturn:
        log.error("interactive.trigger_expired", method=method, age_s=round(age, 3), **self._where())
        raise TriggerExpired(f"{method}: the trigger_id expired ({age:.1f} s after the action; it lives 3 s)")


class InteractiveContexts:
    """Turns the context :class:`~gridbot.context.Contexts` built into an interactive one
    (the hook ``Contexts.make`` calls for an interaction's event)."""

    def __init__(self, interactions: Interactions) -> None:
        self._interactions = interactions

    def context(self, base: Context) -> InteractiveContext:
        return InteractiveContext(
            base.event,
            base.team_id,
            base.enterprise_id,
            base.client,
            base.plugin,
            base.store,
            base.config,
            base.bot_user_id,
            base.users,
            base.routes,
            base.command_prefix,
            base.installation,
            self._interactions.take(base.event.event_id),
            self._interactions.acks,
        )
