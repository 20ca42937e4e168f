"""The Redis store: each decision is one Lua script on keys that share one hash tag."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from operator import methodcaller
from typing import Any, TypeVar

import orjson
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from gridbot.secrets import redact
from gridbot.store.acks import RedisAckRecords
from gridbot.store.base import (
    Decision,
    Election,
    Outcome,
    OwnerLease,
    Store,
    StoreUnavailable,
    merge_candidates,
)
from gridbot.store.connect import Client, connect
from gridbot.store.direct import Direct
from gridbot.store.failures import TRANSIENT as _TRANSIENT
from gridbot.store.keys import Keys
from gridbot.store.scripts import ELECTION_FIELDS as _ELECTION_FIELDS
from gridbot.store.scripts import Scripts
from gridbot.store.scripts import election as _election
from gridbot.store.scripts import stored_election as _stored_election

T = TypeVar("T")
_RENEW_CHUNK = 500  # heartbeats or ownership leases renewed per script call (standalone Redis)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in runs of ``_RENEW_CHUNK``: one script call each, so a huge config does not hold
    the server for long."""
    for start in range(0, len(items), _RENEW_CHUNK):
        yield items[start : start + _RENEW_CHUNK]


class RedisStore(Store):
    shared = True  # many processes: connections are split through ownership leases

    def __init__(self, client: Client, *, keys: Keys | None = None, claim_ttl: int = 900) -> None:
        self.claim_ttl = claim_ttl
        self.cluster = isinstance(client, RedisCluster)
        self.keys = keys or Keys()
        self._r = client
        self._scripts = Scripts.register(client)
        self._acks = RedisAckRecords(client, self.keys, self._scripts.record_ack)
        # The decider's script batches on a connection of their own (a Cluster spreads them).
        self._direct = None if self.cluster else Direct(client.connection_pool)  # type: ignore[union-attr]

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

    async def _each(self, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run one script for each ``(keys, args)``: one round trip where possible.

        A standalone Redis takes EVALSHA in a non-transactional pipeline, on the store's own
        connection when it is free (:mod:`gridbot.store.direct`), else through redis-py, which
        does not ask SCRIPT EXISTS first (a second round trip per batch): a NOSCRIPT reply loads
        the script and retries. A Cluster spreads the calls over slots (and its pipeline cannot
        load a script a node has not seen): they go out concurrently, no multi-slot transaction."""
        if not calls:
            return []
        if self._direct is not None and not self._direct.busy:
            replies = await self._direct.scripts(script.sha, calls)
            if replies is not None:
                return replies
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
        raise StoreUnavailable("a store script could not be loaded")

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

    async def decide_many(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[Decision]:
        """One script call per conversation, all in one pipeline: one round trip per batch."""
        groups: dict[str, list[int]] = {}
        for n, (channel, _, _) in enumerate(asks):
            groups.setdefault(channel, []).append(n)
        calls = []
        for channel, members in groups.items():
            keys = [self.keys.election(channel), *(self.keys.claim(channel, asks[n][1]) for n in members)]
            calls.append((keys, [self.claim_ttl, ";".join(",".join(asks[n][2]) or "-" for n in members)]))
        replies = await self._call(lambda: self._each(self._scripts.decide_many, calls))
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
        replies = await self._call(lambda: self._each(self._scripts.claim, calls))
        return [None if owner is None else str(owner) for owner in replies]

    async def elect(
        self,
        channel: str,
        team: str,
        candidates: Iterable[str],
        *,
        fallback: str | None = None,
        joined: Collection[str] = (),
    ) -> Election:
        cands = merge_candidates("", candidates)
        proposed = team if fallback is None or fallback == team else f"{team},{fallback}"
        args = [proposed, cands, ",".join(joined)]
        reply = await self._call(lambda: self._scripts.elect([self.keys.election(channel)], args))
        return _election(reply)

    async def takeover(
        self, channel: str, expected: str, team: str, reason: str = "heartbeat_lapsed"
    ) -> Election | None:
        key = self.keys.election(channel)
        reply = await self._call(lambda: self._scripts.takeover([key], [expected, team, reason]))
        return _election(reply) if reply else None

    async def depart(
        self, channel: str, teams: Sequence[str], successor: str | None, reason: str, *, left: bool
    ) -> tuple[bool, Election | None]:
        key = self.keys.election(channel)
        args = [",".join(teams), successor or "", reason, "1" if left else "0"]
        moved, *fields = await self._call(lambda: self._scripts.depart([key], args))
        return moved == "1", (_election(fields) if fields[0] else None)

    async def election(self, channel: str) -> Election | None:
        key = self.keys.election(channel)
        return _stored_election(await self._call(lambda: self._r.hmget(key, *_ELECTION_FIELDS)))

    async def pin(self, channel: str, team: str) -> Election:
        key = self.keys.election(channel)
        current = await self.election(channel)
        cands = merge_candidates(",".join(current.candidates) if current else "", [team])

        async def op() -> int:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"team": team, "candidates": cands, "pinned": "1", "reason": "pinned"})
                pipe.hincrby(key, "epoch", 1)
                return int((await pipe.execute())[1])

        epoch = await self._call(op)
        return Election(team, tuple(cands.split(",")), epoch, True, "pinned")

    async def clear(self, channel: str) -> bool:
        return bool(await self._call(lambda: self._r.delete(self.keys.election(channel))))

    async def elections(self) -> dict[str, Election]:
        async def scan() -> list[str]:
            return [k async for k in self._r.scan_iter(match=self.keys.elections_pattern(), count=500)]

        names = await self._call(scan)
        calls = [methodcaller("hmget", name, *_ELECTION_FIELDS) for name in names]
        replies = await self._call(lambda: self._plain(calls))
        found = {}
        for name, fields in zip(names, replies, strict=True):
            election = _stored_election(fields)
            if election is not None:  # cleared between the scan and the read
                found[self.keys.channel_of_election(name)] = election
        return found

    async def renew_alive(self, teams: Sequence[str], holder: str, ttl_ms: int) -> None:
        if self.cluster:
            calls = [([self.keys.alive(team)], [holder, ttl_ms]) for team in teams]
            await self._call(lambda: self._each(self._scripts.hold, calls))
            return

        # One script call per chunk instead of one per team: at 1,000 teams the per-command
        # client CPU of a renewal every lease_ttl/3 was a third of the idle process (profiled).
        async def op() -> None:
            for part in _chunks(teams):
                await self._scripts.hold_many([self.keys.alive(team) for team in part], [holder, ttl_ms])

        await self._call(op)

    async def release_alive(self, teams: Sequence[str], holder: str) -> None:
        calls = [([self.keys.alive(team)], [holder]) for team in teams]
        await self._call(lambda: self._each(self._scripts.release, calls))

    async def alive(self, teams: Sequence[str]) -> set[str]:
        if not teams:
            return set()

        calls = [methodcaller("exists", self.keys.alive(team)) for team in teams]
        found = await self._call(lambda: self._plain(calls))
        return {team for team, n in zip(teams, found, strict=True) if n}

    async def roster_add(self, team_id: str, info: dict[str, Any]) -> None:
        data = orjson.dumps(info).decode()
        await self._call(lambda: self._r.hset(self.keys.roster(), team_id, data))

    async def roster(self) -> dict[str, dict[str, Any]]:
        raw = await self._call(lambda: self._r.hgetall(self.keys.roster()))
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
        return bool(await self._call(lambda: self._scripts.hold([self.keys.lock(name)], [holder, ttl_ms])))

    async def ping(self) -> None:
        await self._call(self._r.ping)

    async def record_ack(self, key: str, ack: str, ttl_ms: int) -> None:
        await self._call(lambda: self._acks.record(key, ack, ttl_ms))

    async def wait_ack(self, key: str, timeout: float) -> str | None:
        return await self._call(lambda: self._acks.wait(key, timeout))

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

    # -- connection ownership leases and process membership -------------------------------------

    async def acquire_owner(self, connection: str, holder: str, ttl_ms: int) -> int | None:
        keys = [self.keys.owner(connection), self.keys.owner_epoch(connection)]
        epoch = await self._call(lambda: self._scripts.own_acquire(keys, [holder, ttl_ms]))
        return None if epoch is None else int(epoch)

    async def renew_owners(self, leases: Mapping[str, int], holder: str, ttl_ms: int) -> set[str]:
        names = list(leases)
        done: list[Any]
        if self.cluster:
            calls = [([self.keys.owner(i)], [holder, leases[i], ttl_ms]) for i in names]
            done = await self._call(lambda: self._each(self._scripts.own_renew, calls))
        else:
            # One script call instead of one per lease (client CPU per command is what costs at
            # 1,000 connections).
            async def op() -> list[Any]:
                out: list[Any] = []
                for part in _chunks(names):
                    keys = [self.keys.owner(i) for i in part]
                    args: list[str | int] = [holder, ttl_ms, *(leases[i] for i in part)]
                    out += await self._scripts.own_renew_many(keys, args)
                return out

            done = await self._call(op)
        return {i for i, ok in zip(names, done, strict=True) if ok == 1}

    async def release_owner(self, connection: str, holder: str, epoch: int) -> bool:
        keys = [self.keys.owner(connection)]
        return bool(await self._call(lambda: self._scripts.own_release(keys, [holder, epoch])))

    async def request_handoff(
        self, connection: str, holder: str, epoch: int, successor: str, ttl_ms: int
    ) -> bool:
        keys = [self.keys.owner(connection), self.keys.successor(connection)]
        args: list[str | int] = [holder, epoch, successor, ttl_ms]
        return bool(await self._call(lambda: self._scripts.own_offer(keys, args)))

    async def take_handoff(self, connection: str, successor: str, ttl_ms: int) -> int | None:
        keys = [
            self.keys.owner(connection),
            self.keys.owner_epoch(connection),
            self.keys.successor(connection),
        ]
        epoch = await self._call(lambda: self._scripts.own_take(keys, [successor, ttl_ms]))
        return None if epoch is None else int(epoch)

    async def cancel_handoff(self, connection: str, successor: str) -> None:
        await self._call(lambda: self._scripts.own_cancel([self.keys.successor(connection)], [successor]))

    async def owners(self, connections: Sequence[str]) -> dict[str, OwnerLease]:
        calls: list[Callable[[Any], Any]] = []
        for i in connections:
            calls += [
                methodcaller("hmget", self.keys.owner(i), "holder", "epoch"),
                methodcaller("get", self.keys.owner_epoch(i)),
                methodcaller("get", self.keys.successor(i)),
            ]
        replies = await self._call(lambda: self._plain(calls))
        found = {}
        for n, i in enumerate(connections):
            (holder, epoch), counter, successor = replies[3 * n : 3 * n + 3]
            found[i] = OwnerLease(holder, int(epoch or counter or 0), successor)
        return found

    async def announce_process(self, instance: str, info: Mapping[str, Any], ttl_ms: int) -> None:
        keys = [self.keys.members(), self.keys.members_info()]
        doc = orjson.dumps(dict(info)).decode()
        await self._call(lambda: self._scripts.member_beat(keys, [instance, doc, ttl_ms]))

    async def processes(self) -> dict[str, dict[str, Any]]:
        keys = [self.keys.members(), self.keys.members_info()]
        flat = await self._call(lambda: self._scripts.members(keys, []))
        return {flat[n]: orjson.loads(flat[n + 1]) for n in range(0, len(flat), 2)}

    async def leave_process(self, instance: str) -> None:
        members, info = self.keys.members(), self.keys.members_info()
        calls = [methodcaller("zrem", members, instance), methodcaller("hdel", info, instance)]
        await self._call(lambda: self._plain(calls))

    async def wipe(self) -> None:
        async def op() -> None:
            keys = [k async for k in self._r.scan_iter(match=f"{self.keys.prefix}:*", count=1000)]
            async with self._r.pipeline(transaction=False) as pipe:
                for key in keys:  # one DEL each: under Cluster the keys live in many slots
                    pipe.delete(key)
                await pipe.execute()

        await self._call(op)

    async def close(self) -> None:
        if self._direct is not None:
            await self._direct.close()
        await self._r.aclose()
