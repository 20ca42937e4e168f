"""Which connections this process serves, when several processes run the same config.

Every process lists the same connections (RTM teams, Socket Mode app tokens). Each connection
is served by the holder of its *ownership lease* in the store, a lease with a fencing epoch:

* **Fencing.** A lease is renewed only at the epoch it was granted (a process that lost it, even
  one that was paused and wakes up late, is refused). Locally each lease has a monotonic deadline,
  ``ttl`` minus a safety margin counted from when the last successful renewal was *sent*; when the
  deadline passes without a renewal (a stalled process, an unreachable store) the store is asked
  at once, before the lease can have lapsed there and gone to anyone else: a refusal closes the
  connection's sockets; an unreachable store leaves them serving, unconfirmed.
* **Death.** A killed process stops renewing; its leases and its registry entry lapse after
  ``ttl``, and the survivors, now fewer, acquire the free connections on their next tick.
* **A newcomer.** A process with at least two fewer connections than the busiest one asks for one
  of its connections (a handoff request), connects it *while the old owner still serves it*, and
  only then takes the lease; the old owner sees its renewal refused and closes its socket. One
  connection moves at a time per process; the dedup stage absorbs the brief overlap.
* **SIGTERM.** :meth:`Ownership.handover` requests a handoff of every owned connection to the
  least loaded live process, waits until they took them (their sockets are up), then returns.

Deliveries already read from a socket are decided by the store's atomic claim like any other, so
the ownership lease decides who *connects*; exactly-once never depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gridbot.logs import get_logger
from gridbot.registry import DRAINING, SERVING, ProcessInfo, Registry
from gridbot.store import Store, StoreUnavailable
from gridbot.store.base import OwnerLease
from gridbot.tasks import cancel_and_wait

log = get_logger("gridbot.ownership")

SAFETY = 0.1  # the local deadline ends this fraction of the TTL before the store's lease does


@dataclass
class Lease:
    epoch: int
    deadline: float  # monotonic: past this, the lease is unconfirmed until the store answers
    unconfirmed: bool = False


class Ownership:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        connections: Sequence[str],
        *,
        ttl: float,
        serve: Callable[[str], None],
        drop: Callable[[str], Awaitable[None]],
        is_connected: Callable[[str], bool],
        teams: Callable[[], list[str]],
    ) -> None:
        self.store = store
        self.registry = registry
        self.instance = registry.instance
        self._connections = list(dict.fromkeys(connections))
        self.ttl = ttl
        self.interval = ttl / 3
        self._held: dict[str, Lease] = {}
        self._incoming: dict[str, float] = {}  # handoffs to us: connection -> give-up time
        self._state = SERVING
        self._serve = serve
        self._drop = drop
        self._is_connected = is_connected
        self._teams = teams
        self._free_seen: set[str] = set()  # free on the previous tick too
        self._changed = asyncio.Event()

    # -- what the supervisor asks ----------------------------------------------------------------

    def serving(self, connection: str) -> bool:
        """Do we hold it, or are we taking it over? An unconfirmed lease (store unreachable) still
        counts: only a refusal from the store ends it (exactly-once rests on the claim, not on
        ownership)."""
        return connection in self._held or connection in self._incoming

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Renew, announce, balance every ``ttl / 3``; a watchdog enforces the local deadlines."""
        fence = asyncio.create_task(self._fence(), name="ownership:fence")
        try:
            await self._announce()
            await asyncio.sleep(self.interval)  # let processes starting together see each other
            while True:
                try:
                    await self._tick()
                except StoreUnavailable as exc:
                    log.warning("ownership.store_unavailable", error=str(exc), owned=len(self._held))
                except Exception:  # a client bug mid-failover must not end ownership for good
                    log.exception("ownership.tick_failed", owned=len(self._held))
                await asyncio.sleep(self.interval)
        finally:
            await cancel_and_wait([fence])

    async def _tick(self) -> None:
        await self._renew()
        await self._announce()
        if self._state != SERVING:
            return
        procs = await self.registry.processes()
        # Balancing looks only at connections we do not hold: ours were just renewed above
        # (a refused one left ``held`` already), and every step skips them anyway. A process
        # that holds all it is configured for (one process, or the last survivor) reads nothing.
        others = [i for i in self._connections if i not in self._held]
        owners = await self.store.owners(others) if others else {}
        await self._take_offered(owners)
        await self._acquire_free(procs, owners)
        await self._pull_one(procs, owners)

    async def _announce(self) -> None:
        await self.registry.announce(
            state=self._state,
            connections=list(self._held),
            teams=self._teams(),
            configured=self._connections,
        )

    async def _renew(self) -> None:
        if not self._held:
            return
        sent = time.monotonic()
        leases = {i: lease.epoch for i, lease in self._held.items()}
        kept = await self.store.renew_owners(leases, self.instance, self._ttl_ms)
        for connection, epoch in leases.items():
            lease = self._held.get(connection)
            if lease is None or lease.epoch != epoch:
                continue
            if connection in kept:
                lease.deadline = sent + self.ttl * (1 - SAFETY)
                if lease.unconfirmed:
                    lease.unconfirmed = False
                    log.info("ownership.confirmed", connection=connection, epoch=epoch)
            elif not await self._reacquire(connection, lease, sent):
                await self._lose(connection, "taken" if self._clock_ok(lease) else "lapsed")
        self._changed.set()

    async def _reacquire(self, connection: str, lease: Lease, sent: float) -> bool:
        """A lease that vanished (it lapsed, or a restarted Redis lost it) and that nobody else took
        is taken again at once, so the socket stays up; a lease someone else holds is not."""
        epoch = await self.store.acquire_owner(connection, self.instance, self._ttl_ms)
        if epoch is None:
            return False
        lease.epoch, lease.deadline, lease.unconfirmed = epoch, sent + self.ttl * (1 - SAFETY), False
        log.warning("ownership.reacquired", connection=connection, epoch=epoch)
        return True

    def _clock_ok(self, lease: Lease) -> bool:
        return time.monotonic() < lease.deadline

    async def _fence(self) -> None:
        """When a lease's local deadline passes without a renewal, ask the store at once: a refusal
        closes the connection (a paused process that woke up late stops there); an unreachable
        store leaves it serving, unconfirmed, so a Redis outage loses no RTM message."""
        while True:
            self._changed.clear()
            if not self._held:
                await self._changed.wait()
                continue
            lease = min(self._held.values(), key=lambda held: held.deadline)
            delay = lease.deadline - time.monotonic()
            if delay > 0:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                continue
            try:
                await self._renew()
            except Exception as exc:  # unreachable, or a client error mid-failover: cannot be refused
                for name, held in self._held.items():
                    if held.deadline <= time.monotonic():
                        if not held.unconfirmed:
                            log.warning(
                                "ownership.unconfirmed",
                                connection=name,
                                epoch=held.epoch,
                                error=type(exc).__name__,
                            )
                        held.unconfirmed = True
                        held.deadline = time.monotonic() + self.interval

    async def _lose(self, connection: str, reason: str) -> None:
        lease = self._held.pop(connection, None)
        if lease is None:
            return
        level = log.info if reason == "taken" else log.warning
        level("ownership.lost", connection=connection, epoch=lease.epoch, reason=reason)
        await self._drop(connection)

    # -- balancing -------------------------------------------------------------------------------

    def _peers(self, procs: list[ProcessInfo]) -> list[ProcessInfo]:
        mine = set(self._connections)
        return [
            p
            for p in procs
            if p.state == SERVING and (p.instance == self.instance or mine & set(p.configured))
        ]

    def _quota(self, procs: list[ProcessInfo]) -> int:
        count = len({p.instance for p in self._peers(procs)} | {self.instance})
        return math.ceil(len(self._connections) / count)

    def _order(self, connections: list[str]) -> list[str]:
        """A per-process order, so processes starting together do not all race for the same one."""
        return sorted(connections, key=lambda i: hashlib.sha256(f"{self.instance}/{i}".encode()).digest())

    async def _acquire_free(self, procs: list[ProcessInfo], owners: dict[str, OwnerLease]) -> None:
        free = [i for i, lease in owners.items() if lease.holder is None and i not in self._incoming]
        quota = self._quota(procs)
        # Free two ticks running: take it whatever the quota says (a peer may be unable to).
        stuck = [i for i in free if i in self._free_seen]
        self._free_seen = set(free)
        for connection in self._order(free):
            if len(self._held) + len(self._incoming) >= quota and connection not in stuck:
                continue
            epoch = await self.store.acquire_owner(connection, self.instance, self._ttl_ms)
            if epoch is None:
                continue
            self._held[connection] = Lease(epoch, time.monotonic() + self.ttl * (1 - SAFETY))
            self._changed.set()
            log.info("ownership.acquired", connection=connection, epoch=epoch, quota=quota)
            self._serve(connection)

    async def _pull_one(self, procs: list[ProcessInfo], owners: dict[str, OwnerLease]) -> None:
        """A newcomer: ask the busiest peer for one connection when we have two fewer or more."""
        if self._incoming:
            return
        live = {p.instance for p in self._peers(procs)}
        counts: dict[str, list[str]] = {}
        for connection, lease in owners.items():
            if lease.holder in live and lease.holder != self.instance and lease.successor is None:
                counts.setdefault(lease.holder, []).append(connection)
        if not counts:
            return
        donor, theirs = max(counts.items(), key=lambda item: (len(item[1]), item[0]))
        if len(theirs) - len(self._held) < 2:
            return
        connection = self._order(theirs)[0]
        lease = owners[connection]
        if await self.store.request_handoff(connection, donor, lease.epoch, self.instance, self._handoff_ms):
            log.info("ownership.pull", connection=connection, donor=donor, epoch=lease.epoch)
            self._start_incoming(connection)

    async def _take_offered(self, owners: dict[str, OwnerLease]) -> None:
        """Handoffs marked for us: connect first; take the lease once the socket is up."""
        for connection, lease in owners.items():
            if lease.successor == self.instance and connection not in self._incoming:
                if connection not in self._held:
                    self._start_incoming(connection)
        for connection, give_up in list(self._incoming.items()):
            if self._is_connected(connection):
                epoch = await self.store.take_handoff(connection, self.instance, self._ttl_ms)
                del self._incoming[connection]
                if epoch is None:
                    log.warning("ownership.handoff_vanished", connection=connection)
                    await self._drop(connection)
                    continue
                self._held[connection] = Lease(epoch, time.monotonic() + self.ttl * (1 - SAFETY))
                self._changed.set()
                log.info("ownership.taken_over", connection=connection, epoch=epoch)
            elif time.monotonic() > give_up:
                del self._incoming[connection]
                log.warning("ownership.handoff_failed", connection=connection, reason="not_connected")
                await self.store.cancel_handoff(connection, self.instance)
                await self._drop(connection)

    def _start_incoming(self, connection: str) -> None:
        self._incoming[connection] = time.monotonic() + self._handoff_ms / 1000
        self._serve(connection)

    # -- config reload ---------------------------------------------------------------------------

    def adopt(self, connection: str) -> None:
        """A new configured connection: taken like any free one on a coming tick."""
        if connection not in self._connections:
            self._connections.append(connection)
            self._changed.set()

    async def abandon(self, connection: str) -> None:
        """An connection no longer configured: release its lease so nobody waits for it."""
        if connection in self._connections:
            self._connections.remove(connection)
        self._incoming.pop(connection, None)
        lease = self._held.pop(connection, None)
        if lease is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.store.release_owner(connection, self.instance, lease.epoch)
        self._changed.set()

    # -- SIGTERM ---------------------------------------------------------------------------------

    async def handover(self, timeout: float) -> None:
        """Hand every owned connection to a live peer (its socket opens before ours closes)."""
        self._state = DRAINING
        for connection in list(self._incoming):
            with contextlib.suppress(StoreUnavailable):
                await self.store.cancel_handoff(connection, self.instance)
            await self._drop(connection)
        self._incoming.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._announce()
                offered = await self._offer_all()
                # Wait for the peers to take what was offered; what nobody can take closes at once.
                while offered & self._held.keys():
                    await asyncio.sleep(0.05)
                    await self._renew()
        except (TimeoutError, StoreUnavailable) as exc:
            log.warning("ownership.handover_incomplete", left=sorted(self._held), error=type(exc).__name__)

    async def _offer_all(self) -> set[str]:
        """Offer every owned connection to a live peer that can serve it; the ones offered."""
        peers = [p for p in self._peers(await self.registry.processes()) if p.instance != self.instance]
        if not peers:
            log.info("ownership.handover_skipped", reason="no_other_process", owned=len(self._held))
            return set()
        offered: set[str] = set()
        load = {p.instance: len(p.connections) for p in peers}
        for connection, lease in sorted(self._held.items()):
            able = [p.instance for p in peers if connection in p.configured]
            if not able:
                continue
            successor = min(able, key=lambda i: (load[i], i))
            if await self.store.request_handoff(
                connection, self.instance, lease.epoch, successor, self._handoff_ms
            ):
                load[successor] += 1
                offered.add(connection)
                log.info("ownership.handover", connection=connection, successor=successor)
        return offered

    async def release_all(self) -> None:
        """Give up every lease now (after handover, or with nobody to hand over to)."""
        for connection, lease in list(self._held.items()):
            with contextlib.suppress(StoreUnavailable):
                await self.store.release_owner(connection, self.instance, lease.epoch)
        self._held.clear()
        with contextlib.suppress(StoreUnavailable):
            await self.registry.leave()

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    @property
    def _handoff_ms(self) -> int:
        return int(self.ttl * 3000)  # a successor that cannot connect within 3 TTLs gives up
