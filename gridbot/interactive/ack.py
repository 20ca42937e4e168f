"""Acks: what an interaction's ack carries, and the one deadline that guarantees it is sent.

Slack needs every interaction acked within 3 s, and for a slash command, a view submission or an
options request the ack *is* the answer (platform-2026.md, "Interactivity"): an immediate
message, ``response_action`` (``errors`` | ``update`` | ``push`` | ``clear``), the options list.
A :class:`Pending` is made when the payload arrives and acks exactly once, whichever comes first:

- the handler: ``await ctx.ack(...)``, or simply returning the answer (``return {"errors": ...}``);
- the handler ending (returned nothing, or raised) without having acked: an empty ack at once;
- the deadline, :data:`ACK_DEADLINE` after arrival: an empty ack, one ``interactive.ack_late``
  warning naming the handler, and a count. The handler is not cancelled: its work after the
  ack (``respond()``, ``update()``) continues under its own timeout;
- the router finding no handler: an empty ack at once;
- the dedup stage deciding the payload is a copy another socket or process has (a balancer's
  retry on another replica, a redelivery): the same ack as the one that has it, which records
  its ack in the store (:mod:`gridbot.store.acks`); empty if none is recorded by this copy's
  deadline (:mod:`gridbot.interactive.intake`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gridbot.interactive.payload import SLASH, Interaction
from gridbot.logs import get_logger

log = get_logger("gridbot.interactive")

#: Seconds after arrival the runtime acks on the handler's behalf: Slack's 3 s, less a margin for
#: the ack's trip back and a busy event loop.
ACK_DEADLINE = 2.5
#: Seconds a ``trigger_id`` can open or push a view, counted from the user's action.
TRIGGER_LIFETIME = 3.0
#: Milliseconds the store keeps the ack of a payload for its copies: a copy Slack's answer can
#: still count for arrives within 3 s of the user's action (before the ack is recorded), and then
#: waits at most its own deadline.
ACK_KEPT_MS = int((TRIGGER_LIFETIME + ACK_DEADLINE) * 1000)

Send = Callable[[dict[str, Any] | None], Awaitable[None]]  # writes the ack (None: empty)


class Routed(Protocol):
    """The handler a payload was routed to (a :class:`gridbot.plugins.Route`)."""

    @property
    def plugin(self) -> str: ...
    @property
    def name(self) -> str: ...


class TriggerExpired(Exception):
    """The ``trigger_id`` is older than Slack's 3 s: no modal can be opened or pushed with it.

    Logged once (``interactive.trigger_expired``, naming the handler) where it is raised; a
    handler that lets it propagate ends quietly, its ack sent.
    """


@dataclass
class AckCounters:
    """Acks so far, by who sent them (metrics and status read these)."""

    by_handler: int = 0  # ctx.ack(), or the handler's return value
    empty_late: int = 0  # the deadline passed: the runtime acked empty
    empty_unrouted: int = 0  # no handler for it
    empty_failed: int = 0  # the handler raised before it acked
    duplicates: int = 0  # handled by another socket or process: acked here with its ack
    duplicates_unanswered: int = 0  # of those, no ack recorded by the deadline: acked empty


class Pending:
    """One interaction, from arrival until its ack (the handler's context keeps it after)."""

    __slots__ = (
        "_send",
        "acked",
        "body",
        "interaction",
        "key",
        "received",
        "recorder",
        "route",
        "team_id",
        "timer",
    )

    def __init__(self, key: str, interaction: Interaction, team_id: str, send: Send, received: float) -> None:
        self.key = key
        self.interaction = interaction
        self.team_id = team_id
        self.received = received  # monotonic: the trigger_id's age is counted from here
        self.route: Routed | None = None  # the handler answering it, once routed
        self.acked = False
        self.body: dict[str, Any] | None = None  # what the ack carried
        self.timer: asyncio.TimerHandle | None = None
        # Set once this copy won the claim: records the ack for the copies that lost it.
        self.recorder: Callable[[Pending], None] | None = None
        self._send = send

    async def ack(self, body: dict[str, Any] | None) -> bool:
        """Send the ack now; False (and nothing sent) if it was sent already."""
        if self.acked:
            return False
        self.acked = True
        self.body = body
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.recorder is not None:  # (a task: the ack does not wait for the store)
            self.recorder(self)
        await self._send(body)
        return True

    def handler(self) -> str | None:
        return f"{self.route.plugin}.{self.route.name}" if self.route is not None else None


class Acks:
    """The deadline of each pending ack, the runtime's empty acks, and the counts of both.

    The empty acks the runtime sends from a timer or a decision run as named tasks, kept here and
    awaited by :meth:`close` (each is one socket write or one HTTP answer).
    """

    def __init__(
        self, *, deadline: float = ACK_DEADLINE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.deadline = deadline
        self.clock = clock
        self.counters = AckCounters()
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, pending: Pending) -> None:
        """Start the deadline of a pending ack (at arrival)."""
        pending.timer = asyncio.get_running_loop().call_later(self.deadline, self._late, pending)

    def _late(self, pending: Pending) -> None:
        pending.timer = None
        if pending.acked:
            return
        self.counters.empty_late += 1
        log.warning(
            "interactive.ack_late",
            handler=pending.handler(),
            kind=pending.interaction.kind,
            team_id=pending.team_id,
            deadline_s=self.deadline,
            acked_late_total=self.counters.empty_late,
        )
        self.empty(pending, "late")

    def empty(self, pending: Pending, why: str) -> None:
        """Ack empty on the runtime's behalf, in a task of its own (from a timer or a decision)."""
        if pending.acked:
            return
        task = asyncio.get_running_loop().create_task(
            self._empty(pending, why), name=f"interactive:ack-{why}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _empty(self, pending: Pending, why: str) -> None:
        try:
            await pending.ack(None)
        except Exception as exc:  # a socket that closed meanwhile: the user sees Slack's error
            log.warning(
                "interactive.ack_failed", reason=why, error=type(exc).__name__, team_id=pending.team_id
            )

    def failed(self, pending: Pending) -> None:
        """The handler raised (or was cancelled) before it acked: ack empty now."""
        if not pending.acked:
            self.counters.empty_failed += 1
            self.empty(pending, "failed")

    async def finish(self, pending: Pending, result: Any) -> None:
        """The handler returned: ack with what it returned, if it has not acked yet."""
        if pending.acked:
            return
        body = returned_body(pending.interaction, result)
        if await pending.ack(body):
            self.counters.by_handler += 1

    async def close(self) -> None:
        """Wait for the empty acks in flight (they are short: one socket write each)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def returned_body(interaction: Interaction, result: Any) -> dict[str, Any] | None:
    """What a handler's return value acks with: None (empty), a dict (sent as it is), or for a
    slash command a string (an ephemeral message)."""
    if result is None:
        return None
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, str) and interaction.kind == SLASH:
        return {"response_type": "ephemeral", "text": result}
    raise TypeError(
        f"a {interaction.kind} handler returns None, a dict (the ack's body)"
        + (" or a str (the message)" if interaction.kind == SLASH else "")
        + f", not {type(result).__name__}"
    )


def ack_body(
    interaction: Interaction,
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
) -> dict[str, Any] | None:
    """The ack's body for ``ctx.ack(...)``'s keywords, checked against what the kind accepts."""
    kind = interaction.kind
    given = (
        {
            name
            for name, value in (
                ("text", text),
                ("blocks", blocks),
                ("errors", errors),
                ("update", update),
                ("push", push),
                ("options", options),
                ("option_groups", option_groups),
            )
            if value is not None
        }
        | ({"clear"} if clear else set())
        | ({"in_channel"} if in_channel else set())
    )
    allowed = {
        SLASH: {"text", "blocks", "in_channel"},
        "view_submission": {"errors", "update", "push", "clear"},
        "block_suggestion": {"options", "option_groups"},
    }.get(kind, set())
    wrong = sorted(given - allowed)
    if wrong:
        accepts = ", ".join(sorted(allowed)) or "nothing (an empty ack)"
        raise ValueError(f"a {kind} ack cannot carry {', '.join(wrong)}; it accepts {accepts}")
    if kind == SLASH:
        if text is None and blocks is None:
            return None
        body: dict[str, Any] = {"response_type": "in_channel" if in_channel else "ephemeral"}
        if text is not None:
            body["text"] = text
        if blocks is not None:
            body["blocks"] = list(blocks)
        return body
    if kind == "view_submission":
        actions = [a for a in ("errors", "update", "push", "clear") if a in given]
        if len(actions) > 1:
            raise ValueError(f"one response_action per ack, not {' and '.join(actions)}")
        if errors is not None:
            return {"response_action": "errors", "errors": dict(errors)}
        if update is not None:
            return {"response_action": "update", "view": dict(update)}
        if push is not None:
            return {"response_action": "push", "view": dict(push)}
        return {"response_action": "clear"} if clear else None
    if kind == "block_suggestion":
        if option_groups is not None:
            return {"option_groups": list(option_groups)}
        return {"options": [option(o) for o in options or ()]}
    return None


def option(value: Any) -> dict[str, Any]:
    """A Block Kit option from a dict (as it is), a ``(label, value)`` pair, or a string."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple) and len(value) == 2:
        label, val = value
    else:
        label = val = str(value)
    return {"text": {"type": "plain_text", "text": str(label)}, "value": str(val)}


def acking(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Run an interactive handler so that its payload is acked once it ends: with its return
    value if it has not acked, empty at once if it raised (a :class:`TriggerExpired` it lets
    through ends it quietly: that was logged)."""

    @functools.wraps(fn)
    async def run(ctx: Any, /, **kwargs: Any) -> None:
        pending: Pending | None = getattr(ctx, "pending", None)
        acks: Acks | None = getattr(ctx, "acks", None)
        if pending is None or acks is None:  # called by hand (a unit test): nothing to ack
            await fn(ctx, **kwargs)
            return
        try:
            result = await fn(ctx, **kwargs)
        except TriggerExpired:
            result = None
        except BaseException:
            acks.failed(pending)
            raise
        await acks.finish(pending, result)

    return run
