"""Faults injected by tests: failing connects, latency, stalled sockets, disabled links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class ConnectFault:
    error: str
    status: int
    retry_after: float | None
    remaining: int | None  # None: until cleared


class Faults:
    def __init__(self) -> None:
        self.connect: dict[str, ConnectFault] = {}
        self.latency = 0.0
        self.latency_methods: frozenset[str] | None = None
        self.link_disabled: set[str] = set()

    def take_connect_fault(self, ids: Iterable[str | None]) -> ConnectFault | None:
        """The fault for the first matching team/app id, counting down its ``times``."""
        for key in ids:
            fault = self.connect.get(key) if key else None
            if fault is None:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.connect[key]  # type: ignore[arg-type]
            return fault
        return None

    def delay_for(self, method: str) -> float:
        if self.latency_methods is None or method in self.latency_methods:
            return self.latency
        return 0.0

    def clear(self) -> None:
        self.connect.clear()
        self.latency = 0.0
        self.latency_methods = None
        self.link_disabled.clear()
