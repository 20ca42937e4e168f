"""The installation store: slack_sdk's ``AsyncInstallationStore`` on gridbot's storage.

:class:`InstallStore` holds the behaviour (the SDK's methods, the lookup rule) on a few storage
primitives; :class:`MemoryInstallStore` and :class:`~gridbot.installs.redis.RedisInstallStore` are
the twins that implement them, run through the same contract tests. One installation is a bot
record plus one record per installer; rotation changes the bot record only, by compare-and-set
on the refresh token it spends.
"""

from __future__ import annotations

import enum
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation

from gridbot.installs.model import Install, install_id, lookup_ids, user_record
from gridbot.secrets import Secret

_sdk_log = logging.getLogger("gridbot.installs")


class Claim(enum.Enum):
    """The answer to "may I spend this refresh token?"."""

    WON = "won"  # yours: call oauth.v2.access, then commit or fail
    BUSY = "busy"  # another process is spending it: wait for its result
    STALE = "stale"  # it is no longer the stored one: someone already rotated (or reinstalled)
    FAILED = "failed"  # the installation is marked failed: nobody spends anything
    GONE = "gone"  # no such installation (uninstalled)


def _delete_id(enterprise_id: str | None, team_id: str | None) -> str:
    """The SDK's delete calls carry no ``is_enterprise_install``: a team id names a workspace
    install, an enterprise id alone the org install (deleting a workspace never drops the org)."""
    return f"team:{team_id}" if team_id else f"org:{enterprise_id}"


class InstallStore(AsyncInstallationStore, ABC):
    """Installations by id (``team:T…`` / ``org:E…``), and slack_sdk's store interface on them."""

    # -- storage primitives (the twins) ------------------------------------------------------------
    @abstractmethod
    async def put(self, install: Install, user: dict[str, Any] | None = None) -> None:
        """Store ``install`` whole (a reinstall replaces the bot and clears ``failed``) and, if
        given, its installer's record."""

    @abstractmethod
    async def get(self, install: str) -> Install | None: ...

    @abstractmethod
    async def installer(self, install: str, user_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def ids(self) -> list[str]:
        """Every stored installation's id, sorted."""

    @abstractmethod
    async def remove(self, install: str) -> None:
        """Drop the installation, its installers and its index entry."""

    @abstractmethod
    async def remove_installers(self, install: str, user_id: str | None) -> None: ...

    @abstractmethod
    async def remove_if(self, install: str, token: Secret) -> bool:
        """Drop the installation if ``token`` is still its bot token (a token Slack said is dead);
        a reinstall made meanwhile, with a new token, stays."""

    @abstractmethod
    async def version(self) -> int:
        """A number every write to any installation changes: a watcher reads everything again
        only when it moved."""

    @abstractmethod
    async def touch(self) -> int:
        """Change :meth:`version` without a write: every watcher reads everything again (an org
        install's workspace was revoked or granted: every process lists its workspaces now).
        Returns the new version."""

    @abstractmethod
    async def claim_refresh(self, install: str, spend: Secret, holder: str, ttl: float) -> Claim:
        """Claim the right to spend ``spend`` (the stored refresh token) for ``ttl`` seconds."""

    @abstractmethod
    async def release_refresh(self, install: str, spend: Secret, holder: str) -> None:
        """Give a claim back when the refresh token was certainly not spent (Slack said no)."""

    @abstractmethod
    async def commit_refresh(
        self, install: str, spent: Secret, token: Secret, refresh: Secret, expires_at: int
    ) -> bool:
        """Replace the pair if ``spent`` is still the stored refresh token (else False, nothing changes)."""

    @abstractmethod
    async def fail_refresh(self, install: str, spent: Secret, error: str) -> bool:
        """Mark the installation failed if ``spent`` is still its refresh token."""

    async def close(self) -> None:
        return None

    # -- gridbot's lookup ------------------------------------------------------------------------
    async def find(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Install | None:
        """The installation serving (enterprise, team): the workspace's own, else its org's."""
        for candidate in lookup_ids(enterprise_id, team_id, is_enterprise_install):
            found = await self.get(candidate)
            if found is not None:
                return found
        return None

    # -- slack_sdk's AsyncInstallationStore --------------------------------------------------------
    @property
    def logger(self) -> logging.Logger:
        return _sdk_log

    async def async_save(self, installation: Installation) -> None:
        install = Install.from_bot(installation, installer=installation.user_id or None)
        await self.put(install, user_record(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        old = await self.get(install_id(bot.enterprise_id, bot.team_id, bool(bot.is_enterprise_install)))
        await self.put(Install.from_bot(bot, installer=old.installer if old else None))

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        found = await self.find(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return found.to_bot() if found and not found.failed else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = await self.find(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if found is None or found.failed:
            return None
        who = user_id or found.installer
        user = await self.installer(found.id, who) if who else None
        if user_id is not None and user is None:
            return None  # the SDK asks for that user's installation: there is none
        return found.to_installation(user)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.remove(_delete_id(enterprise_id, team_id))

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await self.remove_installers(_delete_id(enterprise_id, team_id), user_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.remove(_delete_id(enterprise_id, team_id))


class MemoryInstallStore(InstallStore):
    """One process's installations (tests, the demo); the same contract as Redis."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._bots: dict[str, dict[str, str]] = {}
        self._users: dict[str, dict[str, dict[str, Any]]] = {}
        self._claims: dict[tuple[str, str], tuple[str, float]] = {}  # (install, digest) -> holder, until
        self._clock = clock
        self._version = 0

    async def version(self) -> int:
        return self._version

    async def touch(self) -> int:
        self._version += 1
        return self._version

    async def put(self, install: Install, user: dict[str, Any] | None = None) -> None:
        self._version += 1
        self._bots[install.id] = install.to_fields()
        if user is not None:
            self._users.setdefault(install.id, {})[str(user["user_id"])] = dict(user)

    async def get(self, install: str) -> Install | None:
        fields = self._bots.get(install)
        return Install.from_fields(fields) if fields else None

    async def installer(self, install: str, user_id: str) -> dict[str, Any] | None:
        user = self._users.get(install, {}).get(user_id)
        return dict(user) if user else None

    async def ids(self) -> list[str]:
        return sorted(self._bots)

    async def remove(self, install: str) -> None:
        self._version += 1
        self._bots.pop(install, None)
        self._users.pop(install, None)

    async def remove_if(self, install: str, token: Secret) -> bool:
        fields = self._bots.get(install)
        if fields is None or fields["bot_token"] != token.get():
            return False
        await self.remove(install)
        return True

    async def remove_installers(self, install: str, user_id: str | None) -> None:
        if user_id is None:
            self._users.pop(install, None)
        else:
            self._users.get(install, {}).pop(user_id, None)

    def _stored_refresh(self, install: str) -> str | None:
        fields = self._bots.get(install)
        return None if fields is None else fields["refresh_token"]

    async def claim_refresh(self, install: str, spend: Secret, holder: str, ttl: float) -> Claim:
        fields = self._bots.get(install)
        if fields is None:
            return Claim.GONE
        if fields["refresh_token"] != spend.get():
            return Claim.STALE
        if fields["failed"]:
            return Claim.FAILED
        now = self._clock()
        key = (install, spend.digest())
        held = self._claims.get(key)
        if held is not None and held[1] > now:
            return Claim.BUSY
        self._claims[key] = (holder, now + ttl)
        return Claim.WON

    async def release_refresh(self, install: str, spend: Secret, holder: str) -> None:
        key = (install, spend.digest())
        if self._claims.get(key, ("", 0.0))[0] == holder:
            del self._claims[key]

    async def commit_refresh(
        self, install: str, spent: Secret, token: Secret, refresh: Secret, expires_at: int
    ) -> bool:
        if self._stored_refresh(install) != spent.get():
            return False
        self._version += 1
        fields = self._bots[install]
        fields.update(
            bot_token=token.get(), refresh_token=refresh.get(), expires_at=str(expires_at), failed=""
        )
        return True

    async def fail_refresh(self, install: str, spent: Secret, error: str) -> bool:
        if self._stored_refresh(install) != spent.get():
            return False
        self._version += 1
        self._bots[install]["failed"] = error
        return True
