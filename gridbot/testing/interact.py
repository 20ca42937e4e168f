"""The ``grid`` fixture's interactive side: a user's slash command, click, shortcut or modal
submission, and an :class:`Answer` with everything it caused, once the runtime is done with it.

    answer = await grid.slash("dave", "app-approvals", "/deploy", "api")
    assert answer.ack == {"response_type": "ephemeral", "text": "Deploying api"}
    answer = await grid.shortcut("alice", "new_ticket")
    [modal] = answer.opened
    answer = await grid.submit("alice", {"title": {"input": ""}})
    assert answer.view_errors == {"title": "A title, please"}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridbot.testing.simulator import GridSimulator, PostedMessage
    from gridbot.testing.simulator.interactivity import Sent


@dataclass(frozen=True)
class Answer:
    """What one user action caused, as the user and Slack saw it.

    ``ack`` is the ack's body (None: empty, or none); ``error`` what Slack showed instead of an
    answer (nothing acked within 3 s). ``posted`` are bot messages in conversations, ``ephemeral``
    what only the user saw (an ephemeral ack, a ``respond()``, ``chat.postEphemeral``),
    ``updated`` the ``chat.update`` calls, ``opened`` the views opened or pushed, ``view`` the
    user's top view now, ``view_errors`` the errors shown in it, ``options`` those offered.
    """

    sent: Sent
    posted: list[PostedMessage] = field(default_factory=list)
    ephemeral: list[PostedMessage] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    opened: list[dict[str, Any]] = field(default_factory=list)
    view: dict[str, Any] | None = None
    view_errors: dict[str, Any] = field(default_factory=dict)
    options: list[Any] = field(default_factory=list)

    @property
    def ack(self) -> dict[str, Any] | None:
        return self.sent.ack

    @property
    def acked(self) -> bool:
        return self.sent.acked

    @property
    def error(self) -> str | None:
        return self.sent.error

    @property
    def text(self) -> str:
        """The one message the action got (ephemeral or posted); AssertionError otherwise."""
        messages = [*self.ephemeral, *self.posted]
        if len(messages) != 1:
            shown = "\n".join(f"  {m.text!r}" for m in messages) or "  (none)"
            raise AssertionError(f"expected exactly one message, got {len(messages)}:\n{shown}")
        return messages[0].text


class Interacting:
    """Mixed into :class:`gridbot.testing.pytest_plugin.Grid`."""

    sim: GridSimulator

    def user_id(self, who: str) -> str:
        raise NotImplementedError

    def channel_id(self, where: str) -> str:
        raise NotImplementedError

    async def settle(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def check_errors(self, *, expect_errors: bool = False) -> None:
        raise NotImplementedError

    async def slash(self, user: str, channel: str, command: str, text: str = "", **kw: Any) -> Answer:
        """``user`` types ``/command text`` in ``channel``."""
        i, u, c = self.sim.interactivity, self.user_id(user), self.channel_id(channel)
        return await self._interact(lambda: i.slash(u, c, command, text), u, **kw)

    async def click(
        self, user: str, message: PostedMessage, action_id: str, *, value: str | None = None, **kw: Any
    ) -> Answer:
        """``user`` clicks the button (or selects in the menu) ``action_id`` of a bot ``message``."""
        i, u = self.sim.interactivity, self.user_id(user)
        return await self._interact(
            lambda: i.click(u, message.channel, message.ts, action_id, value=value), u, **kw
        )

    async def shortcut(self, user: str, callback_id: str, **kw: Any) -> Answer:
        """``user`` runs the global shortcut ``callback_id``."""
        i, u = self.sim.interactivity, self.user_id(user)
        return await self._interact(lambda: i.shortcut(u, callback_id), u, **kw)

    async def message_shortcut(self, user: str, channel: str, ts: str, callback_id: str, **kw: Any) -> Answer:
        """``user`` runs the message shortcut ``callback_id`` on the message ``ts``."""
        i, u, c = self.sim.interactivity, self.user_id(user), self.channel_id(channel)
        return await self._interact(lambda: i.message_shortcut(u, c, ts, callback_id), u, **kw)

    async def submit(self, user: str, values: dict[str, dict[str, Any]] | None = None, **kw: Any) -> Answer:
        """``user`` submits their open modal with ``values`` (``{block_id: {action_id: value}}``)."""
        i, u = self.sim.interactivity, self.user_id(user)
        return await self._interact(lambda: i.submit(u, values), u, **kw)

    async def close_modal(self, user: str, **kw: Any) -> Answer | None:
        """``user`` closes their modal (an answer only if it asked for ``view_closed``)."""
        i, u = self.sim.interactivity, self.user_id(user)
        if not (i.views.top(u) or {}).get("notify_on_close"):
            await i.close(u)
            return None

        async def closed() -> Sent:
            sent = await i.close(u)
            assert sent is not None
            return sent

        return await self._interact(closed, u, **kw)

    async def suggest(
        self, user: str, action_id: str, typed: str, *, block_id: str = "", **kw: Any
    ) -> Answer:
        """``user`` types ``typed`` in an external select of their open modal."""
        i, u = self.sim.interactivity, self.user_id(user)
        return await self._interact(lambda: i.suggest(u, action_id, typed, block_id=block_id), u, **kw)

    async def _interact(
        self,
        act: Callable[[], Awaitable[Sent]],
        user: str,
        *,
        timeout: float = 10.0,
        expect_errors: bool = False,
    ) -> Answer:
        sim, i = self.sim, self.sim.interactivity
        posted, ephemeral, calls = len(sim.posted), len(sim.ephemeral), len(sim.calls)
        opened, seen = len(i.views.opened), len(i.seen)
        sent = await act()
        await self.settle(timeout)
        self.check_errors(expect_errors=expect_errors)
        shown = list(i.seen[seen:])
        return Answer(
            sent,
            posted=[p for p in sim.posted[posted:] if p.bot_user_id is not None],
            ephemeral=[p for p in sim.ephemeral[ephemeral:] if p.user == user],
            updated=[c.args for c in sim.calls[calls:] if c.method == "chat.update" and c.ok],
            opened=i.views.opened[opened:],
            view=i.views.top(user),
            view_errors={k: v for s in shown if s.kind == "view_errors" for k, v in s.detail.items()},
            options=[o for s in shown if s.kind == "options" for o in s.detail["options"]],
        )
