"""The installation store, served: every process watches it and serves what it holds, live.

``[[teams]]`` are the static source; this is the other one. Each process runs a watcher
(``installs:watch``) that reads the store's version every ``oauth.watch_interval`` and, when it
moved, reads the installations again and hands the supervisor what changed:

* a new installation becomes one more team on the app's connection (its Socket Mode app token,
  or its Events API signing secret). ``Supervisor.configure`` does the rest as for a team added
  by a config reload: the process holding that connection's ownership lease authenticates it
  and serves it, the others only note it (exactly one process connects it);
* a rotated token is handed to the running team's Web API client (``Supervisor.retoken``): its
  sockets, on the app token, are not touched;
* an installation that left the store, or is marked failed (a refresh token Slack refused),
  is dropped from every process (``Supervisor.unconfigure``): sockets closed, heartbeat given
  up, its elections moved.

An installation leaves the store when Slack says its token is dead: ``app_uninstalled`` or
``tokens_revoked`` (the elector calls :meth:`LiveInstalls.dead`), or an ``auth.test`` answered
``token_revoked`` / ``invalid_auth`` (noticed by the watcher on the team's state). It is removed
only if its bot token is still the one that died (a reinstall made meanwhile stays).

With ``token_rotation`` on, a rotator (``installs:rotate``) sweeps the store on every process;
:class:`~gridbot.installs.rotation.Rotator` makes exactly one of them spend each refresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import random
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from gridbot import secrets
from gridbot.config import OAuthConfig, TeamConfig
from gridbot.dedup.facts import GRANTED
from gridbot.installs.model import Install
from gridbot.installs.org import REVOKED, Lister, OrgInstalls
from gridbot.installs.rotation import Rotator
from gridbot.installs.store import InstallStore
from gridbot.logs import get_logger
from gridbot.secrets import Secret
from gridbot.supervisor import STORE_INDEX
from gridbot.tasks import cancel_and_wait
from gridbot.team import Team, TeamState

log = get_logger("gridbot.installs")

# Why a team stopped that means its installation is gone for good: an auth.test answer (not a
# migration pause), or Slack's lifecycle events (the reason Supervisor.retire records).
DEAD_TOKEN = frozenset(
    {"token_revoked", "invalid_auth", "account_inactive", "not_authed", "app_uninstalled", "tokens_revoked"}
)


class Served(Protocol):
    """What the watcher needs of the supervisor."""

    def configure(self, config: TeamConfig, index: int) -> None: ...
    def retoken(self, old: TeamConfig, new: TeamConfig) -> None: ...
    async def unconfigure(self, config: TeamConfig) -> None: ...
    def teams_of(self, config: TeamConfig) -> list[Team]: ...
    @property
    def teams(self) -> list[Team]: ...


class LiveInstalls:
    """Serves the installation store through the supervisor (one per process)."""

    def __init__(
        self,
        store: InstallStore,
        oauth: OAuthConfig,
        supervisor: Served,
        *,
        rotator: Rotator | None = None,
        rotate_interval: float | None = None,
        listing: Lister | None = None,
        relist_interval: float = 60.0,
    ) -> None:
        """``listing``: ``auth.teams.list`` for org-wide installs (without one they are listed by
        status but not served); ``relist_interval``: how often their workspaces are listed again."""
        self.store = store
        self.oauth = oauth
        self._sup = supervisor
        self.rotator = rotator
        # A token due is refreshed within this: a quarter of the lead time, at most a minute.
        self.rotate_interval = rotate_interval or min(60.0, oauth.refresh_ahead / 4)
        self._served: dict[str, TeamConfig] = {}  # install id -> the config the supervisor has
        self._installs: dict[str, Install] = {}
        self._index = itertools.count(STORE_INDEX)
        self.orgs = OrgInstalls(oauth, supervisor, self._index, listing) if listing is not None else None
        self.relist_interval = relist_interval
        self._listed = 0.0  # (event loop time) when the org installs' workspaces were last listed
        self._first = 0.0  # (event loop time) when they were first to be listed
        self._seen: int | None = None
        self._granted: set[str] = set()  # workspaces team_access_granted named, not listed since
        self._grant_listed = False  # a listing took them in: tell the other processes
        self._wake = asyncio.Event()  # set by a grant: the watcher looks now, not in watch_interval
        self._tasks: list[asyncio.Task[None]] = []

    # -- what the rest of gridbot asks ---------------------------------------------------------

    def installs(self) -> list[Install]:
        return [self._installs[i] for i in sorted(self._installs)]

    def source(self, team: Team) -> tuple[str, int | None]:
        """Where ``team`` came from, and when its token expires (``gridbot status``)."""
        found = self._installs.get(self._install_of(team.config) or "")
        return ("oauth", found.expires_at) if found is not None else ("config", None)

    def rotation(self) -> dict[str, int] | None:
        """What this process's rotator did (``gridbot status --json``: ``rotation``)."""
        r = self.rotator
        if r is None:
            return None
        return {"spent": r.spent, "failed": r.failed, "deferred": r.deferred, "retried": r.retried}

    def rows(self) -> list[dict[str, Any]]:
        """The stored installations as status rows: ids, kind, expiry, state. Never a token."""
        return [
            {
                "id": i.id,
                "team_id": i.team_id,
                "enterprise_id": i.enterprise_id,
                "org_wide": i.is_enterprise_install,
                "source": "oauth",
                "expires_at": i.expires_at,
                "failed": i.failed,
                "served": i.id in self._served or bool(self.orgs and self.orgs.configs(i.id)),
                "workspaces": self.orgs.workspaces(i.id) if self.orgs and i.is_enterprise_install else None,
            }
            for i in self.installs()
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._watch(), name="installs:watch"))
        if self.rotator is not None:
            self._tasks.append(asyncio.create_task(self._rotate(), name="installs:rotate"))

    async def stop(self) -> None:
        await cancel_and_wait(reversed(self._tasks))
        self._tasks.clear()

    async def _watch(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # Redis away: keep serving what we have, look again later
                log.warning("install.watch_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):  # a grant wakes it early (granted)
                async with asyncio.timeout(self.oauth.watch_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def _rotate(self) -> None:
        assert self.rotator is not None
        # Jittered: processes started together would sweep in step, and the first one would spend
        # every refresh token forever (the store's claim keeps it to one spender either way).
        while True:
            await asyncio.sleep(self.rotate_interval * random.uniform(0.5, 1.5))
            try:
                await self.rotator.sweep()
            except Exception as exc:
                log.warning("install.rotate_failed", error=type(exc).__name__)

    async def tick(self) -> None:
        """One look at the store (and at our teams' states): apply what changed."""
        version = await self.store.version()
        if version != self._seen:
            await self.sync()
            self._seen = version
        elif self.orgs is not None and (
            self._granted or asyncio.get_running_loop().time() - self._listed >= self.relist_interval
        ):
            await self._list_orgs()
        if self._grant_listed:  # a grant listed: the other processes list it now too
            self._grant_listed = False
            await self._announce(reason=GRANTED)
        await self._reap()

    async def _announce(self, **why: str) -> None:
        """Bump the store's version: every other process reads the store and lists the org
        installs' workspaces now. Not this one, which just did (unless another write came first).
        Redis away: logged; the others find the change at their next listing."""
        try:
            version = await self.store.touch()
        except Exception as exc:
            log.warning("install.touch_failed", error=type(exc).__name__, **why)
            return
        if self._seen is not None and version == self._seen + 1:
            self._seen = version

    async def sync(self) -> None:
        """Read every stored installation; serve the new ones, retoken the rotated ones, stop the
        failed and the gone ones."""
        stored: dict[str, Install] = {}
        for install_id in await self.store.ids():
            found = await self.store.get(install_id)
            if found is not None:
                stored[install_id] = found
        for install_id, found in stored.items():
            _forget_replaced(self._installs.get(install_id), found)
            first_seen = install_id not in self._installs
            self._installs[install_id] = found
            if found.is_enterprise_install and self.orgs is not None:
                if found.failed:
                    await self.orgs.stop(install_id)
                continue  # served by _list_orgs, below
            if found.failed or found.is_enterprise_install:
                if found.is_enterprise_install and first_seen:
                    log.warning("install.org_wide_not_served", install=install_id)
                config = self._served.pop(install_id, None)
                if config is not None:  # listed by status, no longer served
                    log.error("install.stopped", install=install_id, error=found.failed)
                    await self._sup.unconfigure(config)
                continue
            await self._serve(install_id, found)
        for install_id in [i for i in self._installs if i not in stored]:
            _forget_replaced(self._installs.pop(install_id), None)
            if self.orgs is not None:
                await self.orgs.stop(install_id)
            config = self._served.pop(install_id, None)
            if config is not None:
                await self._sup.unconfigure(config)
                log.info("install.dropped", install=install_id)
        await self._list_orgs()

    async def _list_orgs(self) -> None:
        """The workspaces of every live org-wide install, listed again and served (org.py)."""
        if self.orgs is None:
            return
        teams, now = self._sup.teams, asyncio.get_running_loop().time()
        self._first = self._first or now
        pending = any(not t.team_id and not t.state.final for t in teams)
        if pending and now - self._first < self.relist_interval:
            return  # a team still authenticating may be a workspace's own install: wait for it, a while
        self._listed = now
        granted, self._granted = self._granted, set()
        # A workspace with an installation of its own is served by it, not by the org install
        # (one team per workspace and process; model.lookup_ids: "the workspace's own install wins").
        own = {t.team_id for t in teams if not t.org_wide and t.state != TeamState.REMOVED}
        own |= {i.team_id for i in self._installs.values() if i.team_id and not i.is_enterprise_install}
        listed = True
        for install_id, found in list(self._installs.items()):
            if found.is_enterprise_install and not found.failed:
                listed = await self.orgs.serve(install_id, found, own, granted) and listed
        if granted and not listed:  # (ratelimited, say): the grant waits for the next look
            self._granted |= granted
        elif granted:
            self._grant_listed = True

    def _install_of(self, config: TeamConfig) -> str | None:
        """The installation a served config belongs to (a workspace install, or an org install's
        workspace); None for a team of the config file."""
        found = next((i for i, c in self._served.items() if c is config), None)
        return found or (self.orgs.install_of(config) if self.orgs is not None else None)

    def _configs(self) -> list[tuple[str, TeamConfig]]:
        return [*self._served.items(), *(self.orgs.all() if self.orgs is not None else ())]

    async def _serve(self, install_id: str, found: Install) -> None:
        config = self._served.get(install_id)
        if config is None:
            config = self.oauth.team_config(found.bot_token, install_id)
            self._served[install_id] = config
            self._sup.configure(config, next(self._index))
            log.info("install.served", install=install_id, team_id=found.team_id)
        elif config.bot_token != found.bot_token:
            new = dataclasses.replace(config, bot_token=found.bot_token)
            self._served[install_id] = new
            if any(t.state.final for t in self._sup.teams_of(config)):
                # a reinstall of a team stopped by its dead token: started again, not retokened
                await self._sup.unconfigure(config)
                self._sup.configure(new, next(self._index))
                log.info("install.served", install=install_id, team_id=found.team_id)
            else:
                self._sup.retoken(config, new)
                log.info("install.token_taken", install=install_id, expires_at=found.expires_at)

    async def _reap(self) -> None:
        """A served team whose ``auth.test`` said its token is dead: remove its installation."""
        for install_id, config in self._configs():
            for team in self._sup.teams_of(config):
                if team.state == TeamState.STOPPED and (team.error or "") in DEAD_TOKEN:
                    await self._remove(install_id, config.bot_token, team.error or "")

    def granted(self, enterprise_id: str | None, team_ids: Collection[str]) -> None:
        """Slack says an org admin granted workspaces ``team_ids`` to the org-wide install of
        ``enterprise_id`` (``team_access_granted``): the watcher lists its workspaces now (the
        listing, not the event, says what is granted: a late retry of the event may name a
        workspace revoked since), serves the new ones, and bumps the store's version so that
        every other process lists them too. Returns at once: the dedup stage calls it."""
        orgs = (i.enterprise_id for i in self._installs.values() if i.is_enterprise_install and not i.failed)
        held = enterprise_id in set(orgs)
        if self.orgs is None or not held:
            log.warning(
                "install.grant_dropped",
                enterprise_id=enterprise_id,
                team_ids=sorted(team_ids)[:10],  # (a line no bigger than that, whatever the event)
                granted=len(team_ids),
                reason="no_org_installs" if self.orgs is None else "unknown_installation",
            )
            return
        self._granted.update(team_ids)
        self._wake.set()

    async def dead(self, team_id: str, reason: str) -> None:
        """Slack says ``team_id``'s tokens are dead (``app_uninstalled``, ``tokens_revoked``), or
        an org admin revoked an org-wide install's access to workspace ``team_id``
        (``team_access_revoked``: that workspace only, the installation stays)."""
        if reason == REVOKED:
            if self.orgs is not None and await self.orgs.revoked(team_id):
                await self._announce(team_id=team_id)  # the others list its workspaces now, not in 30 s
            return
        for install_id, config in self._configs():
            if any(t.team_id == team_id for t in self._sup.teams_of(config)):
                await self._remove(install_id, config.bot_token, reason)

    async def _remove(self, install_id: str, token: Secret, reason: str) -> None:
        try:
            if await self.store.remove_if(install_id, token):
                log.info("install.removed", install=install_id, reason=reason)
            await self.sync()  # this process drops it now; the others on their next look
        except Exception as exc:  # Redis away: the stopped team is still here, the watcher retries
            log.warning("install.remove_failed", install=install_id, reason=reason, error=type(exc).__name__)

    # -- token_expired: refresh and retry once -------------------------------------------------

    def client(self, config: TeamConfig, plain: AsyncWebClient) -> AsyncWebClient:
        """The Web API client for a team: ``plain`` (from ``SlackClients.web``) for a static team
        or with rotation off, else the same client that refreshes an expired token once."""
        install_id = self._install_of(config)
        if self.rotator is None or install_id is None:
            return plain
        return RefreshingClient(
            functools.partial(self._refresh, install_id),
            token=plain.token,
            base_url=plain.base_url,
            session=plain.session,
            retry_handlers=plain.retry_handlers,
            logger=plain.logger,
        )

    async def _refresh(self, install_id: str, used: Secret) -> Secret | None:
        assert self.rotator is not None
        try:
            renewed = await self.rotator.refresh(install_id, used=used)
        except Exception as exc:  # refused, gone, or the store away: the call fails as Slack said
            log.warning("install.expired_refresh_failed", install=install_id, error=type(exc).__name__)
            return None
        with contextlib.suppress(Exception):
            await self.tick()  # our own client takes the new token now, not on the next look
        return renewed.bot_token


def _forget_replaced(old: Install | None, new: Install | None) -> None:
    """Rotated or removed tokens leave the redaction registry (the token pattern still masks
    them), so that it does not grow by two tokens per installation every 12 hours."""
    if old is None:
        return
    if new is None or old.bot_token != new.bot_token:
        secrets.forget(old.bot_token.get())
    if old.refresh_token is not None and (new is None or old.refresh_token != new.refresh_token):
        secrets.forget(old.refresh_token.get())


class RefreshingClient(AsyncWebClient):
    """An installation's Web API client: a call answered ``token_expired`` refreshes the token (or
    reads the one another process just stored) and is sent once more with it; never more than
    once per call. (A slack_sdk retry handler cannot do this: the retry reuses the request's
    headers, the old token's among them.)"""

    def __init__(self, refresh: Callable[[Secret], Awaitable[Secret | None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._refresh = refresh

    async def api_call(
        self, api_method: str, *, headers: dict[str, Any] | None = None, **kwargs: Any
    ) -> AsyncSlackResponse:
        try:
            return await super().api_call(api_method, headers=dict(headers or {}), **kwargs)
        except SlackApiError as exc:
            if exc.response.get("error") != "token_expired" or not self.token:
                raise
            fresh = await self._refresh(Secret(self.token))
            if fresh is None:
                raise
        self.token = fresh.get()
        return await super().api_call(api_method, headers=dict(headers or {}), **kwargs)
