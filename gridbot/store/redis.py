"""The Redis store: each decision is one Lua script on keys that share one hash tag."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from operator import methodcaller
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ClusterError, NoScriptError, ReadOnlyError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gridbot.secrets import redact
from gridbot.store.base import (
    Decision,
    Election,
    Outcome,
    OwnerLease,
    Store,
    StoreUnavailable,
    merge_candidates,
)
from gridbot.store.keys import Keys

T = TypeVar("T")
Client = aioredis.Redis | RedisCluster
# Failures that a failover or a network blip explains: the caller buffers and retries. A Cluster
# answers CLUSTERDOWN / TRYAGAIN while a replica is promoted; a demoted Sentinel master READONLY.
_TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
    ReadOnlyError,
)
_TIMEOUTS: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, "decode_responses": True}


def _nodes(netloc: str, default_port: int) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """``user:pass@h1:p1,h2:p2`` -> nodes, username, password (percent-decoded)."""
    auth, _, hosts = netloc.rpartition("@")
    user, _, password = auth.partition(":")
    nodes = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":") if "]" not in item.rpartition(":")[2] else (item, "", "")
        nodes.append((host.strip("[]") or "127.0.0.1", int(port) if port else default_port))
    return nodes, unquote(user) or None, unquote(password) or None


def connect(url: str) -> Client:
    """The redis-py client for a standalone, Cluster or Sentinel URL (see RedisStore.from_url)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query))
    flag = query.pop("cluster", "").lower() in ("1", "true", "yes")
    if scheme in ("redis+cluster", "rediss+cluster") or (flag and scheme in ("redis", "rediss")):
        nodes, user, password = _nodes(parts.netloc, 6379)
        if not nodes:
            raise ValueError("redis.url: a cluster URL needs at least one host:port")
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],
            username=user,
            password=password,
            ssl=scheme.startswith("rediss"),
            max_connections=64,
            # a dead master: retry while the replica is promoted and the slot map refreshed
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=8),
            **_TIMEOUTS,
        )
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        nodes, user, password = _nodes(parts.netloc, 26379)
        path = [p for p in parts.path.split("/") if p]
        if not nodes or not path:
            raise ValueError("redis.url: a sentinel URL is redis+sentinel://host:port[,host:port]/service")
        sentinel_password = query.pop("sentinel_password", None)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            nodes,
            sentinel_kwargs={"password": sentinel_password, **_TIMEOUTS} if sentinel_password else _TIMEOUTS,
            **_TIMEOUTS,
        )
        master: aioredis.Redis = sentinel.master_for(
            path[0],
            db=int(path[1]) if len(path) > 1 else 0,
            username=user,
            password=password,
            ssl=scheme.startswith("rediss"),
            health_check_interval=30,
            max_connections=64,
        )
        return master
    # redis-py's default pool raises once all its connections are busy; this one waits.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, health_check_interval=30, max_connections=64, timeout=10, **_TIMEOUTS
    )
    return aioredis.Redis(connection_pool=pool)


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

# The hot path: many events of one conversation decided in one call (one slot: every key carries
# the conversation's hash tag). KEYS: election, then one claim key per event. ARGV: claim ttl (s),
# then, as one argument, per event the csv of teams its copies speak for, events separated by ";"
# (one argument, not one per event: packing arguments was half of redis-py's cost per batch).
# Returns {} when nobody is elected, else {responsible, r2, r3, ...}: "+" handled now, "~" standby,
# anything else the team that has it.
_DECIDE_MANY = """
local resp = redis.call('HGET', KEYS[1], 'team')
if not resp then return {} end
local out, needle, i = {resp}, ',' .. resp .. ',', 1
for covers in string.gmatch(ARGV[2], '[^;]+') do
  i = i + 1
  local owner = redis.call('GET', KEYS[i])
  if owner then
    out[i] = owner
  elseif string.find(',' .. covers .. ',', needle, 1, true) then
    redis.call('SET', KEYS[i], resp, 'EX', ARGV[1])
    out[i] = '+'
  else
    out[i] = '~'
  end
end
return out
"""

# KEYS: claim. ARGV: team, ttl (s). False if won, else the team that has it.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
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

# The same for many teams at once (standalone Redis only: the keys live in different slots).
# KEYS: liveness keys. ARGV: holder, ttl ms.
_LEASE_MANY = """
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if not cur or cur == ARGV[1] then redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
end
return #KEYS
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_RENEW_CHUNK = 500  # leases renewed per script call (standalone Redis)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in runs of ``_RENEW_CHUNK``: one script call each, so a huge config does not hold
    the server for long."""
    for start in range(0, len(items), _RENEW_CHUNK):
        yield items[start : start + _RENEW_CHUNK]

# Ownership leases (gridbot/ownership.py). KEYS share the {o:<installation>} tag.
# KEYS: owner, epoch. ARGV: holder, ttl ms. Take a free lease under a fresh fencing epoch.
_OWN_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return epoch
"""

# KEYS: owner. ARGV: holder, epoch, ttl ms. Renew only the very lease we were granted.
_OWN_RENEW = """
local cur = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The same for many leases on one server (not a Cluster: the keys are in many slots), one command
# instead of one script call each. KEYS: owners. ARGV: holder, ttl ms, then one epoch per key.
_OWN_RENEW_MANY = """
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'holder', 'epoch')
  if cur[1] == ARGV[1] and cur[2] == ARGV[i + 2] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: owner. ARGV: holder, epoch.
_OWN_RELEASE = """
local cur = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: owner, next. ARGV: holder, epoch, successor, ttl ms. One pending handoff at a time.
_OWN_OFFER = """
local cur = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"""

# KEYS: owner, epoch, next. ARGV: successor, ttl ms. The successor's socket is up: it takes over.
_OWN_TAKE = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return false end
redis.call('DEL', KEYS[3])
local epoch = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return epoch
"""

# KEYS: next. ARGV: successor.
_OWN_CANCEL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Process membership. KEYS: members (zset of expiries), members info (hash). Redis's own clock
# decides expiry, so processes with skewed clocks still agree on who is alive.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
"""

# ARGV: instance, document, ttl ms.
_MEMBER_BEAT = (
    _NOW
    + """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

_MEMBERS = (
    _NOW
    + """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then return {} end
local docs = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  if docs[i] then table.insert(out, id); table.insert(out, docs[i]) end
end
return out
"""
)


def _election(reply: Sequence[Any]) -> Election:
    team, cands, epoch, pinned = reply
    return Election(team, tuple(filter(None, cands.split(","))), int(epoch), pinned == "1")


class RedisStore(Store):
    shared = True  # many processes: installations are split through ownership leases

    def __init__(self, client: Client, *, keys: Keys | None = None, claim_ttl: int = 900) -> None:
        self.claim_ttl = claim_ttl
        self.cluster = isinstance(client, RedisCluster)
        self.keys = keys or Keys()
        self._r = client
        self._decide = client.register_script(_DECIDE)
        self._decide_many = client.register_script(_DECIDE_MANY)
        self._claim = client.register_script(_CLAIM)
        self._elect = client.register_script(_ELECT)
        self._takeover = client.register_script(_TAKEOVER)
        self._lease = client.register_script(_LEASE)
        self._lease_many = client.register_script(_LEASE_MANY)
        self._release = client.register_script(_RELEASE)
        self._own_acquire = client.register_script(_OWN_ACQUIRE)
        self._own_renew = client.register_script(_OWN_RENEW)
        self._own_renew_many = client.register_script(_OWN_RENEW_MANY)
        self._own_release = client.register_script(_OWN_RELEASE)
        self._own_offer = client.register_script(_OWN_OFFER)
        self._own_take = client.register_script(_OWN_TAKE)
        self._own_cancel = client.register_script(_OWN_CANCEL)
        self._member_beat = client.register_script(_MEMBER_BEAT)
        self._members = client.register_script(_MEMBERS)

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "gridbot", claim_ttl: int = 900) -> RedisStore:
        """A store on a standalone Redis, a Redis Cluster or a Sentinel-managed master.

        * ``redis://``, ``rediss://``, ``unix://``: one server (add ``?cluster=true`` for a Cluster)
        * ``redis+cluster://[user:pass@]host:port[,host:port...]`` (``rediss+cluster`` for TLS): any
          reachable nodes; the client learns the slot map, follows MOVED/ASK and failovers.
        * ``redis+sentinel://[user:pass@]host:port[,host:port...]/service[/db]``
          (``?sentinel_password=...`` if the sentinels have their own): the master is found through
          the sentinels, and found again after a failover.
        """
        return cls(connect(url), keys=Keys(key_prefix), claim_ttl=claim_ttl)

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except _TRANSIENT as exc:
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

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        """One script call per conversation, all in one pipeline: one round trip per batch."""
        groups: dict[str, list[int]] = {}
        for n, (channel, _, _) in enumerate(asks):
            groups.setdefault(channel, []).append(n)
        calls = []
        for channel, members in groups.items():
            keys = [self.keys.election(channel), *(self.keys.claim(channel, asks[n][1]) for n in members)]
            calls.append((keys, [self.claim_ttl, ";".join(",".join(asks[n][2]) or "-" for n in members)]))
        replies = await self._call(lambda: self._scripted(self._decide_many, calls))
        unelected = Decision(Outcome.UNELECTED, None)
        found: list[Decision] = [unelected] * len(asks)
        for members, reply in zip(groups.values(), replies, strict=True):
            if not reply:
                continue
            responsible = reply[0]
            handled = Decision(Outcome.HANDLED, responsible)
            standby = Decision(Outcome.STANDBY, responsible)
            for n, code in zip(members, reply[1:], strict=True):
                found[n] = (
                    handled if code == "+" else standby if code == "~" else Decision(Outcome.DUPLICATE, code)
                )
        return found

    async def claim_many(self, claims: Sequence[tuple[str | None, str, str]]) -> list[str | None]:
        keys = self.keys
        calls = [
            ([keys.claim(channel, key) if channel else keys.loose_claim(key)], [team, self.claim_ttl])
            for channel, key, team in claims
        ]
        replies = await self._call(lambda: self._scripted(self._claim, calls))
        return [None if owner is None else str(owner) for owner in replies]

    async def _scripted(self, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run one script for each call in one round trip (EVALSHA in a plain pipeline).

        Unlike a redis-py pipeline given the script object, this does not ask SCRIPT EXISTS
        first (a second round trip per batch); a NOSCRIPT reply loads the script and retries.
        A Cluster spreads the calls over slots, so there they go out concurrently.
        """
        if not calls:
            return []
        if len(calls) == 1:
            return [await script(*calls[0])]
        if self.cluster:
            return list(await asyncio.gather(*(script(k, a) for k, a in calls)))
        for _ in range(2):
            pipe: Any
            async with self._r.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                replies = list(await pipe.execute(raise_on_error=False))
            if not any(isinstance(r, NoScriptError) for r in replies):
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
                return replies
            await self._r.script_load(script.script)
        raise StoreUnavailable("the decide script could not be loaded")

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
        if self.cluster:
            calls = [([self.keys.alive(team)], [holder, ttl_ms]) for team in teams]
            await self._call(lambda: self._each(self._lease, calls))
            return

        # One script call per chunk instead of one per team: at 1,000 teams the per-command
        # client CPU of a renewal every lease_ttl/3 was a third of the idle process (profiled).
        async def op() -> None:
            for part in _chunks(teams):
                await self._lease_many([self.keys.alive(team) for team in part], [holder, ttl_ms])

        await self._call(op)

    async def release_alive(self, teams: Sequence[str], holder: str) -> None:
        calls = [([self.keys.alive(team)], [holder]) for team in teams]
        await self._call(lambda: self._each(self._release, calls))

    async def alive(self, teams: Sequence[str]) -> set[str]:
        if not teams:
            return set()

        calls = [methodcaller("exists", self.keys.alive(team)) for team in teams]
        found = await self._call(lambda: self._plain(calls))
        return {team for team, n in zip(teams, found, strict=True) if n}

    async def register_team(self, team_id: str, info: dict[str, Any]) -> None:
        data = orjson.dumps(info).decode()
        await self._call(lambda: self._r.hset(self.keys.teams(), team_id, data))

    async def installed_teams(self) -> dict[str, dict[str, Any]]:
        raw = await self._call(lambda: self._r.hgetall(self.keys.teams()))
        return {str(team): orjson.loads(info) for team, info in raw.items()}

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

    # -- ownership leases and process membership ------------------------------------------------

    async def _plain(self, calls: Sequence[Callable[[Any], Any]]) -> list[Any]:
        """Plain commands on keys in many slots: a pipeline on one server, concurrent on a Cluster.

        (redis-py's cluster pipeline kept routing to a dead master after a failover; single
        commands refresh the slot map.) Each ``call`` issues one command on the client it is given.
        """
        if not calls:
            return []
        if self.cluster:
            return list(await asyncio.gather(*(call(self._r) for call in calls)))
        pipe: Any
        async with self._r.pipeline(transaction=False) as pipe:
            for call in calls:
                call(pipe)
            return list(await pipe.execute())

    async def _each(self, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run one script on many keys that live in different slots: one round trip where possible.

        A standalone Redis takes a non-transactional pipeline. A Cluster pipeline cannot load a
        script a node has not seen, so there the calls go out concurrently instead (still no
        multi-slot transaction anywhere).
        """
        if not calls:
            return []
        if self.cluster:
            return list(await asyncio.gather(*(script(k, a) for k, a in calls)))
        pipe: Any
        async with self._r.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await script(keys, args, client=pipe)
            return list(await pipe.execute())

    async def acquire_owner(self, installation: str, holder: str, ttl_ms: int) -> int | None:
        keys = [self.keys.owner(installation), self.keys.owner_epoch(installation)]
        epoch = await self._call(lambda: self._own_acquire(keys, [holder, ttl_ms]))
        return None if epoch is None else int(epoch)

    async def renew_owners(self, leases: Mapping[str, int], holder: str, ttl_ms: int) -> set[str]:
        names = list(leases)
        done: list[Any]
        if self.cluster:
            calls = [([self.keys.owner(i)], [holder, leases[i], ttl_ms]) for i in names]
            done = await self._call(lambda: self._each(self._own_renew, calls))
        else:
            # One script call instead of one per lease (client CPU per command is what costs at
            # 1,000 installations).
            async def op() -> list[Any]:
                out: list[Any] = []
                for part in _chunks(names):
                    keys = [self.keys.owner(i) for i in part]
                    out += await self._own_renew_many(keys, [holder, ttl_ms, *(leases[i] for i in part)])
                return out

            done = await self._call(op)
        return {i for i, ok in zip(names, done, strict=True) if ok == 1}

    async def release_owner(self, installation: str, holder: str, epoch: int) -> bool:
        keys = [self.keys.owner(installation)]
        return bool(await self._call(lambda: self._own_release(keys, [holder, epoch])))

    async def request_handoff(
        self, installation: str, holder: str, epoch: int, successor: str, ttl_ms: int
    ) -> bool:
        keys = [self.keys.owner(installation), self.keys.successor(installation)]
        return bool(await self._call(lambda: self._own_offer(keys, [holder, epoch, successor, ttl_ms])))

    async def take_handoff(self, installation: str, successor: str, ttl_ms: int) -> int | None:
        keys = [
            self.keys.owner(installation),
            self.keys.owner_epoch(installation),
            self.keys.successor(installation),
        ]
        epoch = await self._call(lambda: self._own_take(keys, [successor, ttl_ms]))
        return None if epoch is None else int(epoch)

    async def cancel_handoff(self, installation: str, successor: str) -> None:
        await self._call(lambda: self._own_cancel([self.keys.successor(installation)], [successor]))

    async def owners(self, installations: Sequence[str]) -> dict[str, OwnerLease]:
        calls: list[Callable[[Any], Any]] = []
        for i in installations:
            calls += [
                methodcaller("hmget", self.keys.owner(i), "holder", "epoch"),
                methodcaller("get", self.keys.owner_epoch(i)),
                methodcaller("get", self.keys.successor(i)),
            ]
        replies = await self._call(lambda: self._plain(calls))
        found = {}
        for n, i in enumerate(installations):
            (holder, epoch), counter, successor = replies[3 * n : 3 * n + 3]
            found[i] = OwnerLease(holder, int(epoch or counter or 0), successor)
        return found

    async def heartbeat_process(self, instance: str, info: Mapping[str, Any], ttl_ms: int) -> None:
        keys = [self.keys.members(), self.keys.members_info()]
        doc = orjson.dumps(dict(info)).decode()
        await self._call(lambda: self._member_beat(keys, [instance, doc, ttl_ms]))

    async def processes(self) -> dict[str, dict[str, Any]]:
        keys = [self.keys.members(), self.keys.members_info()]
        flat = await self._call(lambda: self._members(keys, []))
        return {flat[n]: orjson.loads(flat[n + 1]) for n in range(0, len(flat), 2)}

    async def leave_process(self, instance: str) -> None:
        members, info = self.keys.members(), self.keys.members_info()
        calls = [methodcaller("zrem", members, instance), methodcaller("hdel", info, instance)]
        await self._call(lambda: self._plain(calls))

    async def close(self) -> None:
        await self._r.aclose()
