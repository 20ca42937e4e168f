"""What the dedup stage counts: every delivery ends in exactly one of these (but ``backpressure``
and ``store_errors``, which count occurrences)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counters:
    handled: int = 0
    duplicate: int = 0
    standby: int = 0
    rescued: int = 0
    own_message: int = 0
    dropped_overflow: int = 0
    store_errors: int = 0
    backpressure: int = 0  # times the intake closed (the links stopped reading until it drained)
