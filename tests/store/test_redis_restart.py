"""A restarted Redis has forgotten every Lua script: the batched calls load them again.

Redis-only (the memory store has no script cache), on a private server this test may restart.
"""

from __future__ import annotations

from gridtest import eventually
from reliability.redis_servers import RedisServers

from gridbot.store import Outcome, RedisStore, StoreUnavailable


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
