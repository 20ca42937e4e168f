"""The Redis store: each decision is one Lua script on keys that share one hash tag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gridbot.secrets import redact
from gridbot.store.base import (
    Decision,
    Election,
    Outcome,
    Store,
    StoreUnavailable,
    merge_candidates,
)
from gridbot.store.keys import Keys

T = TypeVar("T")

# KEYS: election, claim. ARGV: claim ttl (s), then the teams this one delivery speaks for.
_DECIDE = """
local resp = redis.call('HGET', KEYS[1], 'team')
if not resp then return {'unelected', ''} end
local owner = redis.call('GET', KEYS[2])
if owner then return {'duplicate', owner} end
for i = 2, #ARGV do
  if ARGV[i] == resp then
    redis.call('SET', KEYS[2], resp, 'EX', ARGV[1])
    return {'handled', resp}
  end
end
return {'standby', resp}
"""

# KEYS: election. ARGV: proposed team, candidates csv. Keeps a sitting team; merges candidates.
_ELECT = """
local cur = redis.call('HMGET', KEYS[1], 'team', 'candidates', 'epoch', 'pinned')
local seen, list = {}, {}
for c in string.gmatch((cur[2] or '') .. ',' .. ARGV[2], '([^,]+)') do
  if not seen[c] then seen[c] = true; table.insert(list, c) end
end
table.sort(list)
local cands = table.concat(list, ',')
if cur[1] then
  redis.call('HSET', KEYS[1], 'candidates', cands)
  return {cur[1], cands, cur[3], cur[4] or '0'}
end
redis.call('HSET', KEYS[1], 'team', ARGV[1], 'candidates', cands, 'epoch', 1, 'pinned', 0)
return {ARGV[1], cands, '1', '0'}
"""

# KEYS: election. ARGV: expected team, new team. Compare-and-set: only the team that saw the
# responsible team die moves the election, and only once.
_TAKEOVER = """
local cur = redis.call('HMGET', KEYS[1], 'team', 'candidates', 'epoch', 'pinned')
if not cur[1] then return false end
if cur[1] ~= ARGV[1] then return {cur[1], cur[2], cur[3], cur[4] or '0'} end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'team', ARGV[2], 'pinned', 0)
return {ARGV[2], cur[2], tostring(epoch), '0'}
"""

# KEYS: lease. ARGV: holder, ttl ms. Renew if ours or free.
_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _election(reply: Sequence[Any]) -> Election:
    team, cands, epoch, pinned = reply
    return Election(team, tuple(filter(None, cands.split(","))), int(epoch), pinned == "1")


class RedisStore(Store):
    def __init__(self, client: aioredis.Redis, *, keys: Keys | None = None, claim_ttl: int = 900) -> None:
        self.claim_ttl = claim_ttl
        self.keys = keys or Keys()
        self._r = client
        self._decide = client.register_script(_DECIDE)
        self._elect = client.register_script(_ELECT)
        self._takeover = client.register_script(_TAKEOVER)
        self._lease = client.register_script(_LEASE)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "gridbot", claim_ttl: int = 900) -> RedisStore:
        # redis-py's default pool raises once all its connections are busy; this one waits.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
            max_connections=64,
            timeout=10,
        )
        return cls(aioredis.Redis(connection_pool=pool), keys=Keys(key_prefix), claim_ttl=claim_ttl)

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(redact(str(exc))) from None

    async def decide(self, channel: str, key: str, covers: Sequence[str]) -> Decision:
        keys = [self.keys.election(channel), self.keys.claim(channel, key)]
        outcome, team = await self._call(lambda: self._decide(keys, [self.claim_ttl, *covers]))
        return Decision(Outcome(outcome), team or None)

    async def claim(self, channel: str | None, key: str, team: str) -> str | None:
        name = self.keys.claim(channel, key) if channel else self.keys.loose_claim(key)

        async def op() -> str | None:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.set(name, team, nx=True, ex=self.claim_ttl)
                pipe.get(name)
                won, owner = await pipe.execute()
            return None if won else str(owner)

        return await self._call(op)

    async def elect(self, channel: str, team: str, candidates: Iterable[str]) -> Election:
        cands = merge_candidates("", [*candidates, team])
        reply = await self._call(lambda: self._elect([self.keys.election(channel)], [team, cands]))
        return _election(reply)

    async def takeover(self, channel: str, expected: str, team: str) -> Election | None:
        reply = await self._call(lambda: self._takeover([self.keys.election(channel)], [expected, team]))
        return _election(reply) if reply else None

    async def election(self, channel: str) -> Election | None:
        key = self.keys.election(channel)
        reply = await self._call(lambda: self._r.hmget(key, "team", "candidates", "epoch", "pinned"))
        return _election([reply[0], reply[1] or "", reply[2] or "1", reply[3] or "0"]) if reply[0] else None

    async def pin(self, channel: str, team: str) -> Election:
        key = self.keys.election(channel)
        current = await self.election(channel)
        cands = merge_candidates(",".join(current.candidates) if current else "", [team])

        async def op() -> int:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"team": team, "candidates": cands, "pinned": "1"})
                pipe.hincrby(key, "epoch", 1)
                return int((await pipe.execute())[1])

        epoch = await self._call(op)
        return Election(team, tuple(cands.split(",")), epoch, True)

    async def clear(self, channel: str) -> bool:
        return bool(await self._call(lambda: self._r.delete(self.keys.election(channel))))

    async def elections(self) -> dict[str, Election]:
        found: dict[str, Election] = {}
        async for key in self._r.scan_iter(match=self.keys.elections_pattern(), count=500):
            channel = self.keys.channel_of_election(key)
            election = await self.election(channel)
            if election is not None:
                found[channel] = election
        return found

    async def renew_alive(self, teams: Sequence[str], holder: str, ttl_ms: int) -> None:
        async def op() -> None:
            async with self._r.pipeline(transaction=False) as pipe:
                for team in teams:
                    await self._lease([self.keys.alive(team)], [holder, ttl_ms], client=pipe)
                await pipe.execute()

        await self._call(op)

    async def release_alive(self, teams: Sequence[str], holder: str) -> None:
        async def op() -> None:
            async with self._r.pipeline(transaction=False) as pipe:
                for team in teams:
                    await self._release([self.keys.alive(team)], [holder], client=pipe)
                await pipe.execute()

        await self._call(op)

    async def alive(self, teams: Sequence[str]) -> set[str]:
        if not teams:
            return set()

        async def op() -> list[int]:
            async with self._r.pipeline(transaction=False) as pipe:
                for team in teams:
                    pipe.exists(self.keys.alive(team))
                return list(await pipe.execute())

        found = await self._call(op)
        return {team for team, n in zip(teams, found, strict=True) if n}

    async def kv_get(self, namespace: str, key: str) -> Any | None:
        raw = await self._call(lambda: self._r.get(self.keys.kv(namespace, key)))
        return None if raw is None else orjson.loads(raw)

    async def kv_set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        data = orjson.dumps(value).decode()
        px = int(ttl * 1000) if ttl else None
        await self._call(lambda: self._r.set(self.keys.kv(namespace, key), data, px=px))

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return bool(await self._call(lambda: self._r.delete(self.keys.kv(namespace, key))))

    async def try_lock(self, name: str, holder: str, ttl_ms: int) -> bool:
        return bool(await self._call(lambda: self._lease([self.keys.lock(name)], [holder, ttl_ms])))

    async def ping(self) -> None:
        await self._call(self._r.ping)

    async def publish_status(self, instance: str, document: dict[str, Any], ttl: float) -> None:
        data = orjson.dumps(document).decode()
        key = self.keys.process_status(instance)
        await self._call(lambda: self._r.set(key, data, px=max(int(ttl * 1000), 1)))

    async def statuses(self) -> dict[str, dict[str, Any]]:
        async def op() -> dict[str, dict[str, Any]]:
            keys = [k async for k in self._r.scan_iter(match=self.keys.process_status_pattern(), count=500)]
            values = await self._r.mget(keys) if keys else []
            prefix = len(self.keys.process_status(""))
            return {k[prefix:]: orjson.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

        return await self._call(op)

    async def withdraw_status(self, instance: str) -> None:
        await self._call(lambda: self._r.delete(self.keys.process_status(instance)))

    async def close(self) -> None:
        await self._r.aclose()
    async def register_team(self, team_id: str, info: dict[str, Any]) -> None:
        data = orjson.dumps(info).decode()
        await self._call(lambda: self._r.hset(self.keys.teams(), team_id, data))

    async def installed_teams(self) -> dict[str, dict[str, Any]]:
        raw = await self._call(lambda: self._r.hgetall(self.keys.teams()))
        return {str(team): orjson.loads(info) for team, info in raw.items()}

