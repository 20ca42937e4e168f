"""Org-wide installations, served one workspace at a time.

An org-wide install (``is_enterprise_install``) holds one bot token for the whole org, and the
bot answers only in the workspaces an org admin granted it (platform-2026.md, "Org-ready apps":
"admins then grant workspaces: ``team_access_granted`` / ``team_access_revoked`` events;
``auth.teams.list`` lists the workspaces the token can act in. Some methods then need an explicit
``team_id``"). gridbot serves each granted workspace as a team of its own: a
:class:`~gridbot.config.TeamConfig` with the org token and ``workspace`` set, so its team id is
the workspace's (whatever the org token's ``auth.test`` says) and every Web API call it makes is
sent with ``team_id=`` that workspace (the supervisor sets it on the team's client). Elections,
dedup, heartbeats and handlers then see one more team, as for a workspace install.

The workspaces are read with ``auth.teams.list`` (every page) when the installation is first
seen, when its token rotates, when ``team_access_granted`` arrives, and every ``relist`` seconds.
Slack sends both events once per app, with ``authorizations[0]`` naming the org install; each is
a fact of the dedup stage (:mod:`gridbot.dedup.facts`), applied by the elector on the process
that heard it:

* ``team_access_granted``: the workspaces are listed at once
  (:meth:`gridbot.installs.live.LiveInstalls.granted` wakes the watcher), the new ones served,
  and the store's version bumped so that every other process lists them within its
  ``watch_interval``. The listing, not the event, decides what is served: a delivery Slack
  retries late may name a workspace revoked since. The event can only be heard on a connection
  of the app (a socket, or a signing secret this process verifies), i.e. while the process
  serves a team of the app: before the first grant of an app that has no other team here there
  is none, and the next ``relist`` finds the workspace.
* ``team_access_revoked``: the workspace is dropped at once (the elector's stop path:
  :meth:`gridbot.installs.live.LiveInstalls.dead`), the version bumped likewise; at the next
  listing otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import Protocol

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.config import OAuthConfig, TeamConfig
from gridbot.dedup.facts import GRANTED
from gridbot.installs.model import Install
from gridbot.logs import get_logger
from gridbot.secrets import Secret

log = get_logger("gridbot.installs")

#: Lists the workspaces an org token may act in (``auth.teams.list``, every page).
Lister = Callable[[Secret], Awaitable[list[str]]]
REVOKED = "team_access_revoked"


def lister(client: AsyncWebClient, *, limit: int = 100) -> Lister:
    """``auth.teams.list`` through ``client`` (tokenless: each call brings the org token)."""

    async def workspaces(token: Secret) -> list[str]:
        found: list[str] = []
        cursor: str | None = None
        while True:
            response = await client.auth_teams_list(token=token.get(), limit=limit, cursor=cursor)
            teams = response.get("teams") or []
            found.extend(str(t["id"]) for t in teams if isinstance(t, dict) and t.get("id"))
            meta = response.get("response_metadata")
            cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
            if not cursor:
                return found

    return workspaces


class Configured(Protocol):
    """What the org installs need of the supervisor (a subset of ``live.Served``)."""

    def configure(self, config: TeamConfig, index: int) -> None: ...
    def retoken(self, old: TeamConfig, new: TeamConfig) -> None: ...
    async def unconfigure(self, config: TeamConfig) -> None: ...


class OrgInstalls:
    """The granted workspaces of every org-wide installation this process serves."""

    def __init__(
        self, oauth: OAuthConfig, supervisor: Configured, index: Iterator[int], listing: Lister
    ) -> None:
        self._oauth = oauth
        self._sup = supervisor
        self._index = index
        self._list = listing
        self._served: dict[str, dict[str, TeamConfig]] = {}  # install id -> workspace -> config

    def configs(self, install_id: str) -> list[TeamConfig]:
        return list(self._served.get(install_id, {}).values())

    def all(self) -> list[tuple[str, TeamConfig]]:
        return [(i, c) for i, served in self._served.items() for c in served.values()]

    def install_of(self, config: TeamConfig) -> str | None:
        return next((i for i, c in self.all() if c is config), None)

    def workspaces(self, install_id: str) -> list[str]:
        return sorted(self._served.get(install_id, {}))

    async def serve(
        self, install_id: str, found: Install, own: set[str], named: Collection[str] = ()
    ) -> bool:
        """List ``found``'s workspaces; serve the granted ones but those in ``own`` (served by an
        installation of their own), drop the others, retoken all. ``named``: the workspaces a
        ``team_access_granted`` event named (the log line says why a workspace is served).
        False: the listing failed, nothing changed."""
        try:
            granted = set(await self._list(found.bot_token)) - own
        except Exception as exc:  # Slack or the network away: keep serving what we have
            log.warning("install.workspaces_failed", install=install_id, error=type(exc).__name__)
            return False
        served = self._served.setdefault(install_id, {})
        for workspace in sorted(set(served) - granted):
            await self._drop(install_id, workspace, "not_listed")
        for workspace, config in list(served.items()):
            if config.bot_token != found.bot_token:
                served[workspace] = dataclasses.replace(config, bot_token=found.bot_token)
                self._sup.retoken(config, served[workspace])
        for workspace in sorted(granted - set(served)):
            config = dataclasses.replace(
                self._oauth.team_config(found.bot_token, install_id), workspace=workspace
            )
            served[workspace] = config
            self._sup.configure(config, next(self._index))
            log.info(
                "install.workspace_served",
                install=install_id,
                enterprise_id=found.enterprise_id,
                team_id=workspace,
                via=GRANTED if workspace in named else "listing",
            )
        return True

    async def revoked(self, workspace: str) -> bool:
        """Slack says an org admin revoked ``workspace``: no install of ours serves it from now."""
        hits = [i for i, served in self._served.items() if workspace in served]
        for install_id in hits:
            await self._drop(install_id, workspace, REVOKED)
        return bool(hits)

    async def stop(self, install_id: str) -> None:
        """The installation is gone or failed: every workspace of it stops."""
        for workspace in sorted(self._served.get(install_id, {})):
            await self._drop(install_id, workspace, "install_stopped")
        self._served.pop(install_id, None)

    async def _drop(self, install_id: str, workspace: str, reason: str) -> None:
        config = self._served[install_id].pop(workspace)
        await self._sup.unconfigure(config)
        log.info("install.workspace_dropped", install=install_id, team_id=workspace, reason=reason)
