"""Connection ownership leases and process membership: the same contract on memory and real Redis."""

from __future__ import annotations

from gridtest import eventually

from gridbot.store import Store

CONN = "rtm:0123456789ab"  # a connection key


async def test_a_free_connection_goes_to_one_process_with_a_growing_epoch(store: Store) -> None:
    first = await store.acquire_owner(CONN, "p1", 60_000)
    assert first is not None
    assert await store.acquire_owner(CONN, "p2", 60_000) is None  # held
    assert await store.renew_owners({CONN: first}, "p1", 60_000) == {CONN}
    assert await store.renew_owners({CONN: first}, "p2", 60_000) == set()  # not p2's
    assert await store.release_owner(CONN, "p1", first)
    second = await store.acquire_owner(CONN, "p2", 60_000)
    assert second is not None and second > first
    # The old holder, waking up late with its old epoch, cannot renew or release the new lease.
    assert await store.renew_owners({CONN: first}, "p1", 60_000) == set()
    assert not await store.release_owner(CONN, "p1", first)
    owners = await store.owners([CONN, "rtm:other"])
    assert (owners[CONN].holder, owners[CONN].epoch) == ("p2", second)
    assert owners["rtm:other"].holder is None


async def test_a_lapsed_lease_is_lost_even_to_the_same_holder(store: Store) -> None:
    epoch = await store.acquire_owner(CONN, "p1", 50)
    assert epoch is not None

    async def lapsed() -> bool | None:
        return True if (await store.owners([CONN]))[CONN].holder is None else None

    await eventually(lapsed, 5)
    assert await store.renew_owners({CONN: epoch}, "p1", 60_000) == set()
    again = await store.acquire_owner(CONN, "p1", 60_000)
    assert again is not None and again > epoch  # a fresh epoch: the old one stays fenced off


async def test_a_handoff_moves_the_lease_only_to_the_named_successor(store: Store) -> None:
    epoch = await store.acquire_owner(CONN, "old", 60_000)
    assert epoch is not None
    assert not await store.request_handoff(CONN, "old", epoch + 1, "new", 60_000)  # stale epoch
    assert await store.request_handoff(CONN, "old", epoch, "new", 60_000)
    assert not await store.request_handoff(CONN, "old", epoch, "third", 60_000)  # one at a time
    assert (await store.owners([CONN]))[CONN].successor == "new"
    assert await store.take_handoff(CONN, "third", 60_000) is None
    taken = await store.take_handoff(CONN, "new", 60_000)
    assert taken is not None and taken > epoch
    assert await store.renew_owners({CONN: epoch}, "old", 60_000) == set()  # the old owner learns
    assert await store.renew_owners({CONN: taken}, "new", 60_000) == {CONN}
    lease = (await store.owners([CONN]))[CONN]
    assert (lease.holder, lease.successor) == ("new", None)


async def test_a_cancelled_handoff_leaves_the_owner_in_place(store: Store) -> None:
    epoch = await store.acquire_owner(CONN, "old", 60_000)
    assert epoch is not None
    assert await store.request_handoff(CONN, "old", epoch, "new", 60_000)
    await store.cancel_handoff(CONN, "new")
    assert await store.take_handoff(CONN, "new", 60_000) is None
    assert await store.renew_owners({CONN: epoch}, "old", 60_000) == {CONN}


async def test_processes_announce_themselves_and_vanish_when_they_stop(store: Store) -> None:
    await store.announce_process("p1", {"owns": ["a"]}, 60_000)
    await store.announce_process("p2", {"owns": []}, 60_000)
    await store.announce_process("p3", {"owns": []}, 50)  # dies without leaving
    assert (await store.processes())["p1"] == {"owns": ["a"]}
    await store.leave_process("p2")

    async def only_p1() -> bool | None:
        return True if set(await store.processes()) == {"p1"} else None

    await eventually(only_p1, 5)


async def test_renewing_many_leases_keeps_exactly_the_ones_still_ours(store: Store) -> None:
    """More leases than one renewal call carries: each is judged alone (holder and epoch)."""
    names = [f"rtm:{n:04d}" for n in range(1203)]
    epochs = {}
    for name in names:
        epoch = await store.acquire_owner(name, "me", 60_000)
        assert epoch is not None
        epochs[name] = epoch
    stale, stolen, released = names[7], names[600], names[1202]
    await store.release_owner(stolen, "me", epochs[stolen])
    assert await store.acquire_owner(stolen, "other", 60_000) is not None  # now someone else's
    await store.release_owner(released, "me", epochs[released])
    leases = {**epochs, stale: epochs[stale] + 1000}  # an epoch we were never granted
    kept = await store.renew_owners(leases, "me", 60_000)
    assert kept == set(names) - {stale, stolen, released}
    assert await store.renew_owners(epochs, "somebody", 60_000) == set()
    assert await store.renew_owners({}, "me", 60_000) == set()
