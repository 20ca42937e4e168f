"""When scheduled handlers fall due: :class:`Every` N seconds or on a :class:`Cron` expression.

A trigger names each slot (a number all processes agree on) and the moment it falls due; the
scheduler takes a store lock named after the slot, so each slot runs once across the processes.
Cron expressions are the classic five fields (minute hour day-of-month month day-of-week),
evaluated in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Trigger(Protocol):
    def next_slot(self, after: float) -> tuple[int, float]:
        """The first slot strictly after the epoch time ``after``: (slot number, due time)."""
        ...

    @property
    def interval(self) -> float:
        """A typical gap between slots, in seconds (sizes the slot lock)."""
        ...


@dataclass(frozen=True)
class Every:
    """Every ``seconds``, aligned to wall-clock multiples so all processes agree on the slots."""

    seconds: float

    def next_slot(self, after: float) -> tuple[int, float]:
        slot = int(after // self.seconds) + 1
        return slot, slot * self.seconds

    @property
    def interval(self) -> float:
        return self.seconds


_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (  # name, low, high, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_HORIZON = timedelta(days=366 * 5)


class CronError(ValueError):
    """A cron expression that cannot be parsed or never fires; the message says which field."""


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    def number(token: str) -> int:
        token = token.lower()
        if token in names:
            return names[token]
        if not token.isdigit():
            raise CronError(f"{name}: {token!r} is not a number")
        value = int(token)
        if not low <= value <= high:
            raise CronError(f"{name}: {value} is outside {low}-{high}")
        return value

    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: bad step {step_text!r}")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = number(a), number(b)
            if first > last:
                raise CronError(f"{name}: range {span!r} runs backwards")
        else:
            first = number(span)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression (UTC). ``Cron.parse("*/15 9-17 * * mon-fri")``."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is "*"
    any_weekday: bool  # day of week is "*"

    @classmethod
    def parse(cls, expression: str) -> Cron:
        text = _ALIASES.get(expression.strip().lower(), expression)
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}")
        sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        minutes, hours, days, months, _ = sets
        cron = cls(expression, minutes, hours, days, months, weekdays, parts[2] == "*", parts[4] == "*")
        cron.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # raises when it can never fire
        return cron

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # classic cron: both restricted means either
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: datetime) -> datetime:
        t = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + _HORIZON
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise CronError(f"{self.expression!r} never fires")

    def next_slot(self, after: float) -> tuple[int, float]:
        due = self.next_after(datetime.fromtimestamp(after, UTC)).timestamp()
        return int(due // 60), due

    @property
    def interval(self) -> float:
        return 60.0
