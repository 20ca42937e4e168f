"""Web API rate limits: Slack's tiers with per-method budgets, answered with 429 + Retry-After.

slack-protocol-notes.md E (and docs.slack.dev/apis/web-api/rate-limits): limits are "per method x
workspace x app": Tier 1 1+/min, Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min, plus special
tiers; ``chat.postMessage`` allows "about 1 msg/s per channel (short bursts OK) plus a
workspace-wide cap" ("several hundred messages per minute"); over the limit Slack answers HTTP 429,
``Retry-After: <s>`` and ``{"ok": false, "error": "ratelimited"}``.

Each budget is a token bucket: ``burst`` calls at once, refilled at ``per_minute``. The numbers are
the floors Slack documents ("1+" is 1), never more generous. ``scale`` runs the limiter's clock
faster than the wall clock (``scale=60``: a Slack minute passes in one real second) so a test can
cross a Tier 1 window without waiting a minute; Retry-After is in real seconds, rounded up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    per_minute: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a limit needs per_minute > 0 and burst >= 1")


#: "Access tier 1 methods infrequently. A small amount of burst behavior is tolerated." (3: small)
TIER_1 = Limit(1, 3)
TIER_2 = Limit(20, 20)
TIER_3 = Limit(50, 50)
TIER_4 = Limit(100, 100)
#: chat.postMessage, per channel: 1 per second, "short bursts >1 allowed".
POST_PER_CHANNEL = Limit(60, 2)
#: chat.postMessage, per workspace and app: "several hundred messages per minute".
POST_PER_WORKSPACE = Limit(300, 300)

#: Each method's tier, as the method's reference page gives it.
METHOD_LIMITS: Mapping[str, Limit] = {
    "auth.teams.list": TIER_2,  # docs.slack.dev/reference/methods/auth.teams.list: Tier 2
    "auth.test": TIER_4,  # "Special": generous; no documented number below Tier 4
    "team.info": TIER_3,
    "rtm.connect": TIER_1,
    "apps.connections.open": TIER_1,
    "apps.event.authorizations.list": TIER_4,
    "conversations.info": TIER_3,
    "conversations.list": TIER_2,
    "conversations.members": TIER_4,
    "conversations.history": TIER_3,  # internal apps keep Tier 3 (platform-2026.md, Rate limits)
    "conversations.replies": TIER_3,
    "users.info": TIER_4,
    "users.list": TIER_2,
    "chat.postMessage": POST_PER_WORKSPACE,
    "chat.postEphemeral": TIER_4,
    "chat.update": TIER_3,
    "reactions.add": TIER_3,
    "views.open": TIER_4,  # the views.* reference pages: Tier 4
    "views.push": TIER_4,
    "views.update": TIER_4,
    "admin.apps.approve": TIER_2,
    "admin.apps.restrict": TIER_2,
    "admin.apps.clearResolution": TIER_2,
    "admin.apps.clear_resolution": TIER_2,
    "admin.apps.requests.list": TIER_2,
    "admin.apps.uninstall": TIER_1,
    "migration.exchange": TIER_2,  # docs.slack.dev/reference/methods/migration.exchange: Tier 2
    "oauth.v2.access": TIER_4,
}


class _Bucket:
    __slots__ = ("limit", "tokens", "updated")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = limit.burst
        self.updated = now

    def refill(self, now: float) -> None:
        gained = (now - self.updated) * self.limit.per_minute / 60.0
        self.tokens = min(self.limit.burst, self.tokens + gained)
        self.updated = now


class RateLimits:
    """The budgets in force and the buckets spent against them.

    ``overrides`` replaces the limit of any method (``{"users.info": Limit(1, 1)}``), and
    ``"chat.postMessage/channel"`` the per-channel posting limit. ``enabled=False`` turns every
    limit off (for a test about something else that must post faster than Slack allows).
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        scale: float = 1.0,
        overrides: Mapping[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.enabled = enabled
        self.scale = scale
        self.limits: dict[str, Limit] = {**METHOD_LIMITS, "chat.postMessage/channel": POST_PER_CHANNEL}
        self.limits.update(overrides or {})
        self._clock = clock
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self.limited = 0  # 429s answered

    def limit_for(self, method: str) -> Limit | None:
        return self.limits.get(method)

    def check(self, method: str, team: str | None, caller: str, channel: str | None = None) -> float | None:
        """Spend one call of ``caller`` (an app id, or a user id for user tokens) on ``team``;
        None if allowed, else the real seconds until it would be (the Retry-After)."""
        if not self.enabled:
            return None
        limit = self.limits.get(method)
        if limit is None:
            return None
        keys: list[tuple[tuple[str, ...], Limit]] = [((method, team or "", caller), limit)]
        per_channel = self.limits.get(f"{method}/channel")
        if channel is not None and per_channel is not None:
            keys.append(((method, caller, channel), per_channel))
        now = self._clock() * self.scale
        buckets = [(self._bucket(key, lim, now), lim) for key, lim in keys]
        wait = max((1.0 - b.tokens) * 60.0 / lim.per_minute for b, lim in buckets)
        if wait > 0:
            self.limited += 1
            return wait / self.scale
        for bucket, _ in buckets:
            bucket.tokens -= 1.0
        return None

    def _bucket(self, key: tuple[str, ...], limit: Limit, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= 10_000:  # per-channel keys: forget the full (idle) buckets
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(limit, now)
        else:
            bucket.limit = limit
            bucket.refill(now)
        return bucket

    def _prune(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.limit.burst:
                del self._buckets[key]

    def reset(self) -> None:
        """Every budget full again."""
        self._buckets.clear()


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up so a client never retries early; at least 1."""
    return str(max(1, math.ceil(seconds)))
