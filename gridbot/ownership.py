"""Which installations this process serves, when several processes run the same config.

Every process lists the same installations (RTM teams, Socket Mode app tokens). Each installation
is served by the holder of its *ownership lease* in the store, a lease with a fencing epoch:

* **Fencing.** A lease is renewed only at the epoch it was granted (a process that lost it, even
  one that was paused and wakes up late, is refused). Locally each lease has a monotonic deadline,
  ``ttl`` minus a safety margin counted from when the last successful renewal was *sent*; when the
  deadline passes without a renewal (store unreachable, process stalled) the installation's
  sockets are closed, before the lease can have lapsed in the store and gone to anyone else.
* **Death.** A killed process stops renewing; its leases and its registry entry lapse after
  ``ttl``, and the survivors, now fewer, acquire the free installations on their next tick.
* **Joining.** A process with at least two fewer installations than the busiest one asks for one
  of its installations (a handoff request), connects it *while the old owner still serves it*, and
  only then takes the lease; the old owner sees its renewal refused and closes its socket. One
  installation moves at a time per process; the dedup stage absorbs the brief overlap.
* **SIGTERM.** :meth:`Ownership.handover` requests a handoff of every owned installation to the
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
        installations: Sequence[str],
        *,
        ttl: float,
        serve: Callable[[str], None],
        drop: Callable[[str], Awaitable[None]],
        is_connected: Callable[[str], bool],
        teams: Callable[[], list[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.registry = registry
        self.instance = registry.instance
        self.installations = list(dict.fromkeys(installations))
        self.ttl = ttl
        self.interval = ttl / 3
        self.held: dict[str, Lease] = {}
        self.incoming: dict[str, float] = {}  # handoffs to us: installation -> give-up time
        self.state = SERVING
        self._serve = serve
        self._drop = drop
        self._is_connected = is_connected
        self._teams = teams
        self._clock = clock
        self._free_seen: set[str] = set()  # free on the previous tick too
        self._changed = asyncio.Event()

    # -- what the supervisor asks ----------------------------------------------------------------

    def valid(self, installation: str) -> bool:
        """Do we hold it? An unconfirmed lease (store unreachable) still counts: only a refusal
        from the store ends it (exactly-once rests on the claim, not on ownership)."""
        return installation in self.held

    def serving(self, installation: str) -> bool:
        return self.valid(installation) or installation in self.incoming

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
                    log.warning("ownership.store_unavailable", error=str(exc), owned=len(self.held))
                except Exception:  # a client bug mid-failover must not end ownership for good
                    log.exception("ownership.tick_failed", owned=len(self.held))
                await asyncio.sleep(self.interval)
        finally:
            await cancel_and_wait([fence])

    async def _tick(self) -> None:
        await self._renew()
        await self._announce()
        if self.state != SERVING:
            return
        procs = await self.registry.processes()
        # Balancing looks only at installations we do not hold: ours were just renewed above
        # (a refused one left ``held`` already), and every step skips them anyway. A process
        # that holds all it is configured for (one process, or the last survivor) reads nothing.
        others = [i for i in self.installations if i not in self.held]
        owners = await self.store.owners(others) if others else {}
        await self._take_offered(owners)
        await self._acquire_free(procs, owners)
        await self._pull_one(procs, owners)

    async def _announce(self) -> None:
        await self.registry.announce(
            state=self.state,
            installations=[i for i in self.held if self.valid(i)],
            teams=self._teams(),
            configured=self.installations,
        )

    async def _renew(self) -> None:
        if not self.held:
            return
        sent = self._clock()
        leases = {i: lease.epoch for i, lease in self.held.items()}
        kept = await self.store.renew_owners(leases, self.instance, self._ttl_ms)
        for installation, epoch in leases.items():
            lease = self.held.get(installation)
            if lease is None or lease.epoch != epoch:
                continue
            if installation in kept:
                lease.deadline = sent + self.ttl * (1 - SAFETY)
                if lease.unconfirmed:
                    lease.unconfirmed = False
                    log.info("ownership.confirmed", installation=installation, epoch=epoch)
            elif not await self._reacquire(installation, lease, sent):
                await self._lose(installation, "taken" if self.clock_ok(lease) else "lapsed")
        self._changed.set()

    async def _reacquire(self, installation: str, lease: Lease, sent: float) -> bool:
        """A lease that vanished (it lapsed, or a restarted Redis lost it) and that nobody else took
        is taken again at once, so the socket stays up; a lease someone else holds is not."""
        epoch = await self.store.acquire_owner(installation, self.instance, self._ttl_ms)
        if epoch is None:
            return False
        lease.epoch, lease.deadline, lease.unconfirmed = epoch, sent + self.ttl * (1 - SAFETY), False
        log.warning("ownership.reacquired", installation=installation, epoch=epoch)
        return True

    def clock_ok(self, lease: Lease) -> bool:
        return self._clock() < lease.deadline

    async def _fence(self) -> None:
        """When a lease's local deadline passes without a renewal, ask the store at once: a refusal
        closes the installation (a paused process that woke up late stops there); an unreachable
        store leaves it serving, unconfirmed, so a Redis outage loses no RTM message."""
        while True:
            self._changed.clear()
            if not self.held:
                await self._changed.wait()
                continue
            lease = min(self.held.values(), key=lambda held: held.deadline)
            delay = lease.deadline - self._clock()
            if delay > 0:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                continue
            try:
                await self._renew()
            except Exception as exc:  # unreachable, or a client error mid-failover: cannot be refused
                for name, held in self.held.items():
                    if held.deadline <= self._clock():
                        if not held.unconfirmed:
                            log.warning(
                                "ownership.unconfirmed",
                                installation=name,
                                epoch=held.epoch,
                                error=type(exc).__name__,
                            )
                        held.unconfirmed = True
                        held.deadline = self._clock() + self.interval

    async def _lose(self, installation: str, reason: str) -> None:
        lease = self.held.pop(installation, None)
        if lease is None:
            return
        level = log.info if reason == "taken" else log.warning
        level("ownership.lost", installation=installation, epoch=lease.epoch, reason=reason)
        await self._drop(installation)

    # -- balancing -------------------------------------------------------------------------------

    def _peers(self, procs: list[ProcessInfo]) -> list[ProcessInfo]:
        mine = set(self.installations)
        return [
            p
            for p in procs
            if p.state == SERVING and (p.instance == self.instance or mine & set(p.configured))
        ]

    def _quota(self, procs: list[ProcessInfo]) -> int:
        count = len({p.instance for p in self._peers(procs)} | {self.instance})
        return math.ceil(len(self.installations) / count)

    def _order(self, installations: list[str]) -> list[str]:
        """A per-process order, so processes starting together do not all race for the same one."""
        return sorted(installations, key=lambda i: hashlib.sha256(f"{self.instance}/{i}".encode()).digest())

    async def _acquire_free(self, procs: list[ProcessInfo], owners: dict[str, OwnerLease]) -> None:
        free = [i for i, lease in owners.items() if lease.holder is None and i not in self.incoming]
        quota = self._quota(procs)
        # Free two ticks running: take it whatever the quota says (a peer may be unable to).
        stuck = [i for i in free if i in self._free_seen]
        self._free_seen = set(free)
        for installation in self._order(free):
            if len(self.held) + len(self.incoming) >= quota and installation not in stuck:
                continue
            epoch = await self.store.acquire_owner(installation, self.instance, self._ttl_ms)
            if epoch is None:
                continue
            self.held[installation] = Lease(epoch, self._clock() + self.ttl * (1 - SAFETY))
            self._changed.set()
            log.info("ownership.acquired", installation=installation, epoch=epoch, quota=quota)
            self._serve(installation)

    async def _pull_one(self, procs: list[ProcessInfo], owners: dict[str, OwnerLease]) -> None:
        """Joining: ask the busiest peer for one installation when we have two fewer or more."""
        if self.incoming:
            return
        live = {p.instance for p in self._peers(procs)}
        counts: dict[str, list[str]] = {}
        for installation, lease in owners.items():
            if lease.holder in live and lease.holder != self.instance and lease.successor is None:
                counts.setdefault(lease.holder, []).append(installation)
        if not counts:
            return
        donor, theirs = max(counts.items(), key=lambda item: (len(item[1]), item[0]))
        if len(theirs) - len(self.held) < 2:
            return
        installation = self._order(theirs)[0]
        lease = owners[installation]
        if await self.store.request_handoff(
            installation, donor, lease.epoch, self.instance, self._handoff_ms
        ):
            log.info("ownership.pull", installation=installation, donor=donor, epoch=lease.epoch)
            self._start_incoming(installation)

    async def _take_offered(self, owners: dict[str, OwnerLease]) -> None:
        """Handoffs marked for us: connect first; take the lease once the socket is up."""
        for installation, lease in owners.items():
            if lease.successor == self.instance and installation not in self.incoming:
                if installation not in self.held:
                    self._start_incoming(installation)
        for installation, give_up in list(self.incoming.items()):
            if self._is_connected(installation):
                epoch = await self.store.take_handoff(installation, self.instance, self._ttl_ms)
                del self.incoming[installation]
                if epoch is None:
                    log.warning("ownership.handoff_vanished", installation=installation)
                    await self._drop(installation)
                    continue
                self.held[installation] = Lease(epoch, self._clock() + self.ttl * (1 - SAFETY))
                self._changed.set()
                log.info("ownership.taken_over", installation=installation, epoch=epoch)
            elif self._clock() > give_up:
                del self.incoming[installation]
                log.warning("ownership.handoff_failed", installation=installation, reason="not_connected")
                await self.store.cancel_handoff(installation, self.instance)
                await self._drop(installation)

    def _start_incoming(self, installation: str) -> None:
        self.incoming[installation] = self._clock() + self._handoff_ms / 1000
        self._serve(installation)

    # -- config reload ---------------------------------------------------------------------------

    def adopt(self, installation: str) -> None:
        """A new configured installation: taken like any free one on a coming tick."""
        if installation not in self.installations:
            self.installations.append(installation)
            self._changed.set()

    async def abandon(self, installation: str) -> None:
        """An installation no longer configured: release its lease so nobody waits for it."""
        if installation in self.installations:
            self.installations.remove(installation)
        self.incoming.pop(installation, None)
        lease = self.held.pop(installation, None)
        if lease is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.store.release_owner(installation, self.instance, lease.epoch)
        self._changed.set()

    # -- SIGTERM ---------------------------------------------------------------------------------

    async def handover(self, timeout: float) -> None:
        """Hand every owned installation to a live peer (its socket opens before ours closes)."""
        self.state = DRAINING
        for installation in list(self.incoming):
            with contextlib.suppress(StoreUnavailable):
                await self.store.cancel_handoff(installation, self.instance)
            await self._drop(installation)
        self.incoming.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._announce()
                offered = await self._offer_all()
                # Wait for the peers to take what was offered; what nobody can take closes at once.
                while offered & self.held.keys():
                    await asyncio.sleep(0.05)
                    await self._renew()
        except (TimeoutError, StoreUnavailable) as exc:
            log.warning("ownership.handover_incomplete", left=sorted(self.held), error=type(exc).__name__)

    async def _offer_all(self) -> set[str]:
        """Offer every owned installation to a live peer that can serve it; the ones offered."""
        peers = [p for p in self._peers(await self.registry.processes()) if p.instance != self.instance]
        if not peers:
            log.info("ownership.handover_skipped", reason="no_other_process", owned=len(self.held))
            return set()
        offered: set[str] = set()
        load = {p.instance: len(p.installations) for p in peers}
        for installation, lease in sorted(self.held.items()):
            able = [p.instance for p in peers if installation in p.configured]
            if not able:
                continue
            successor = min(able, key=lambda i: (load[i], i))
            if await self.store.request_handoff(
                installation, self.instance, lease.epoch, successor, self._handoff_ms
            ):
                load[successor] += 1
                offered.add(installation)
                log.info("ownership.handover", installation=installation, successor=successor)
        return offered

    async def release_all(self) -> None:
        """Give up every lease now (after handover, or with nobody to hand over to)."""
        for installation, lease in list(self.held.items()):
            with contextlib.suppress(StoreUnavailable):
                await self.store.release_owner(installation, self.instance, lease.epoch)
        self.held.clear()
        with contextlib.suppress(StoreUnavailable):
            await self.registry.leave()

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    @property
    def _handoff_ms(self) -> int:
        return int(self.ttl * 3000)  # a successor that cannot connect within 3 TTLs gives up
