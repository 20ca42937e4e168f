"""Redis-only: what the store does when its server goes away, on a private server it may kill.

Every caller (dedup, election, supervisor, ops) buffers or degrades on StoreUnavailable, so no
other exception may escape; and a restarted Redis has forgotten the Lua scripts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from gridtest import eventually
from reliability.redis_servers import RedisServers

from gridbot.store import Outcome, RedisStore, Store, StoreUnavailable

CALLS: dict[str, Callable[[Store], Awaitable[object]]] = {
    "decide_many": lambda s: s.decide_many([("C1", "k", ["T1"]), ("C2", "k", ["T1"])]),
    "claim_many": lambda s: s.claim_many([("C1", "k", "T1"), (None, "e", "T1")]),
    "elect": lambda s: s.elect("C1", "T1", ["T1"]),
    "elections": lambda s: s.elections(),
    "pin": lambda s: s.pin("C1", "T1"),
    "renew_alive": lambda s: s.renew_alive(["T1", "T2"], "p1", 1000),
    "release_alive": lambda s: s.release_alive(["T1", "T2"], "p1"),
    "alive": lambda s: s.alive(["T1", "T2"]),
    "roster": lambda s: s.roster(),
    "kv_get": lambda s: s.kv_get("ns", "k"),
    "try_lock": lambda s: s.try_lock("job", "p1", 1000),
    "statuses": lambda s: s.statuses(),
    "renew_owners": lambda s: s.renew_owners({"rtm:a": 1, "rtm:b": 1}, "p1", 1000),
    "owners": lambda s: s.owners(["rtm:a"]),
    "processes": lambda s: s.processes(),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_an_unreachable_server_is_store_unavailable(redis_servers: RedisServers, call: str) -> None:
    server = redis_servers.start(persistent=False)
    store = RedisStore.from_url(server.url(), key_prefix="gone")
    try:
        await store.ping()
        server.kill()
        with pytest.raises(StoreUnavailable):
            await CALLS[call](store)
    finally:
        await store.close()


async def test_every_batched_call_works_again_after_a_restart_without_data(
    redis_servers: RedisServers,
) -> None:
    server = redis_servers.start(persistent=False)
    store = RedisStore.from_url(server.url(), key_prefix="restart")
    try:
        await store.renew_alive(["T1", "T2"], "p1", 60_000)  # the scripts are loaded now
        server.kill()
        server.start()  # empty: no keys, no scripts

        async def reconnected() -> bool | None:  # the pooled connection died with the server
            try:
                await store.ping()
            except StoreUnavailable:
                return None
            return True

        await eventually(reconnected, 10)
        await store.elect("C1", "T1", ["T1", "T2"])
        await store.elect("C2", "T2", ["T1", "T2"])
        decisions = await store.decide_many([("C1", "k1", ["T1"]), ("C2", "k1", ["T1"])])
        assert [d.outcome for d in decisions] == [Outcome.HANDLED, Outcome.STANDBY]
        assert await store.claim_many([("C2", "k1", "T1"), (None, "e1", "T1")]) == [None, None]
        await store.renew_alive(["T1", "T2"], "p1", 60_000)
        assert await store.alive(["T1", "T2"]) == {"T1", "T2"}
        await store.release_alive(["T1", "T2"], "p1")
        assert await store.alive(["T1", "T2"]) == set()
    finally:
        await store.close()
