"""The Redis twin of the installation store: every write to one installation is one Lua script on
keys that share its ``{i:<id>}`` hash tag (see :class:`gridbot.store.keys.Keys`)."""

from __future__ import annotations

from typing import Any

import orjson

from gridbot.installs.model import Install
from gridbot.installs.store import Claim, InstallStore
from gridbot.secrets import Secret
from gridbot.store.connect import Client, connect
from gridbot.store.keys import Keys

# KEYS: bot, users. ARGV: user id ("" for none), user JSON, then field, value, ... of the bot.
_PUT = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[1] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
"""

# KEYS: bot, claim. ARGV: refresh token to spend, holder, ttl ms.
_CLAIM = """
local stored = redis.call('HGET', KEYS[1], 'refresh_token')
if not stored then return 'gone' end
if stored ~= ARGV[1] then return 'stale' end
local failed = redis.call('HGET', KEYS[1], 'failed')
if failed and failed ~= '' then return 'failed' end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 'won' end
return 'busy'
"""

# KEYS: claim. ARGV: holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: bot, claim. ARGV: spent refresh token, new token, new refresh token, expires_at.
# The new pair replaces the old in one step: no reader ever sees an installation without a pair.
_COMMIT = """
if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'bot_token', ARGV[2], 'refresh_token', ARGV[3],
           'expires_at', ARGV[4], 'failed', '')
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: bot, claim. ARGV: spent refresh token, error.
_FAIL = """
if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'failed', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""


# KEYS: bot, users. ARGV: the bot token the installation must still have.
_REMOVE_IF = """
if redis.call('HGET', KEYS[1], 'bot_token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""


class RedisInstallStore(InstallStore):
    """Installations in the deployment's Redis, under its key prefix."""

    def __init__(self, client: Client, *, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self._r = client
        self._put = client.register_script(_PUT)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._commit = client.register_script(_COMMIT)
        self._fail = client.register_script(_FAIL)
        self._remove_if = client.register_script(_REMOVE_IF)

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "gridbot") -> RedisInstallStore:
        """A store on a standalone Redis, a Cluster or a Sentinel master (``redis.url`` syntax)."""
        return cls(connect(url), keys=Keys(key_prefix))

    def __repr__(self) -> str:
        return f"RedisInstallStore(prefix={self.keys.prefix!r})"

    async def close(self) -> None:
        await self._r.aclose()

    async def put(self, install: Install, user: dict[str, Any] | None = None) -> None:
        flat = [item for pair in install.to_fields().items() for item in pair]
        uid = str(user["user_id"]) if user else ""
        blob = orjson.dumps(user).decode() if user else ""
        await self._put(
            keys=[self.keys.install(install.id), self.keys.installers(install.id)], args=[uid, blob, *flat]
        )
        # The index lives on another slot: written after the record, so a listed id always
        # exists or was removed since (readers skip an id whose record is gone).
        await self._r.sadd(self.keys.installs(), install.id)
        await self._bump()

    async def _bump(self) -> int:
        # After the write it announces (another slot): a watcher that sees the new number reads
        # the new record.
        return int(await self._r.incr(self.keys.installs_version()))

    async def version(self) -> int:
        return int(await self._r.get(self.keys.installs_version()) or 0)

    async def touch(self) -> int:
        return await self._bump()

    async def get(self, install: str) -> Install | None:
        raw = await self._r.hgetall(self.keys.install(install))
        return Install.from_fields({str(k): str(v) for k, v in raw.items()}) if raw else None

    async def installer(self, install: str, user_id: str) -> dict[str, Any] | None:
        blob = await self._r.hget(self.keys.installers(install), user_id)
        if not blob:
            return None
        record: dict[str, Any] = orjson.loads(blob)
        return record

    async def ids(self) -> list[str]:
        members = await self._r.smembers(self.keys.installs())
        return sorted(str(m) for m in members)

    async def remove(self, install: str) -> None:
        await self._r.delete(self.keys.install(install), self.keys.installers(install))
        await self._r.srem(self.keys.installs(), install)
        await self._bump()

    async def remove_if(self, install: str, token: Secret) -> bool:
        keys = [self.keys.install(install), self.keys.installers(install)]
        if not await self._remove_if(keys=keys, args=[token.get()]):
            return False
        await self._r.srem(self.keys.installs(), install)
        await self._bump()
        return True

    async def remove_installers(self, install: str, user_id: str | None) -> None:
        if user_id is None:
            await self._r.delete(self.keys.installers(install))
        else:
            await self._r.hdel(self.keys.installers(install), user_id)

    def _claim_keys(self, install: str, spend: Secret) -> list[str]:
        return [self.keys.install(install), self.keys.refresh_claim(install, spend.digest())]

    async def claim_refresh(self, install: str, spend: Secret, holder: str, ttl: float) -> Claim:
        answer = await self._claim(
            keys=self._claim_keys(install, spend), args=[spend.get(), holder, int(ttl * 1000)]
        )
        return Claim(answer)

    async def release_refresh(self, install: str, spend: Secret, holder: str) -> None:
        await self._release(keys=[self.keys.refresh_claim(install, spend.digest())], args=[holder])

    async def commit_refresh(
        self, install: str, spent: Secret, token: Secret, refresh: Secret, expires_at: int
    ) -> bool:
        args = [spent.get(), token.get(), refresh.get(), str(expires_at)]
        done = bool(await self._commit(keys=self._claim_keys(install, spent), args=args))
        if done:
            await self._bump()
        return done

    async def fail_refresh(self, install: str, spent: Secret, error: str) -> bool:
        done = bool(await self._fail(keys=self._claim_keys(install, spent), args=[spent.get(), error]))
        if done:
            await self._bump()
        return done
