"""Config reload on SIGHUP: add and remove teams without touching the others.

The new file is read and validated first; a bad one is rejected (every problem logged with its key
path) and the running config stays. Teams are compared per connection (an RTM bot token, or a
Socket Mode app token with all its teams): a connection that is unchanged keeps its sockets, a
new one is started, a removed one is stopped and its teams' heartbeats released. A Socket Mode
connection that only gained teams keeps its sockets and adds them; any other change to one
restarts that connection only. Other sections (runtime, plugins, redis, http, slack) are not
applied live: a change there is logged as needing a restart.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gridbot.config import Config, ConfigError, TeamConfig, connection_key, load, replace
from gridbot.logs import get_logger

if TYPE_CHECKING:
    from gridbot.runtime import Runtime

log = get_logger("gridbot.reload")
_LIVE_SECTIONS = ("teams", "warnings")


def fingerprint(team: TeamConfig) -> tuple[str, str, str, int]:
    """What makes a team the same team: its tokens and transport (not its label)."""
    app = team.app_token.digest() if team.app_token else ""
    return (team.transport, team.bot_token.digest(), app, team.connections)


@dataclass
class Plan:
    """What a reload changes, per connection key."""

    remove: list[str] = field(default_factory=list)  # connections to stop
    add: list[tuple[TeamConfig, int]] = field(default_factory=list)  # (team, index in new config)
    restart: list[str] = field(default_factory=list)  # stopped, then their new teams are added
    unchanged: list[str] = field(default_factory=list)


def plan(old: tuple[TeamConfig, ...], new: tuple[TeamConfig, ...]) -> Plan:
    before: dict[str, list[TeamConfig]] = defaultdict(list)
    after: dict[str, list[tuple[TeamConfig, int]]] = defaultdict(list)
    for team in old:
        before[connection_key(team)].append(team)
    for index, team in enumerate(new):
        after[connection_key(team)].append((team, index))
    result = Plan()
    for key in before.keys() - after.keys():
        result.remove.append(key)
    for key, teams in after.items():
        if key not in before:
            result.add += teams
            continue
        was = sorted(fingerprint(t) for t in before[key])
        now = sorted(fingerprint(t) for t, _ in teams)
        if was == now:
            result.unchanged.append(key)
        elif set(was) <= set(now) and len(set(now)) == len(now):  # only gained teams
            result.add += [(t, i) for t, i in teams if fingerprint(t) not in set(was)]
        else:
            result.restart.append(key)
            result.add += teams
    return result


def _needs_restart(old: Config, new: Config) -> list[str]:
    return [
        name
        for name in old.__dataclass_fields__
        if name not in _LIVE_SECTIONS and getattr(old, name) != getattr(new, name)
    ]


class Reloader:
    """Serialises reloads; :meth:`request` is safe to call from a signal handler."""

    def __init__(self, runtime: Runtime, path: str | Path) -> None:
        self._rt = runtime
        self._path = Path(path)
        self._wake = asyncio.Event()

    def request(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.reload()
            except Exception:  # a failed reload must not end the daemon
                log.exception("config.reload_failed", path=str(self._path))

    async def reload(self) -> Plan | None:
        """Apply the file's teams now. None when the file was rejected (the old config stays)."""
        log.info("config.reloading", path=str(self._path))
        try:
            new = load(self._path)
        except ConfigError as exc:
            log.error("config.reload_rejected", path=str(self._path), problems=exc.problems)
            return None
        rt = self._rt
        assert rt.supervisor is not None, "reload needs a started runtime"
        sup = rt.supervisor
        old = rt.config
        changes = plan(old.teams, new.teams)
        for key in changes.remove:
            await sup.forget(key)
        for key in changes.restart:  # a team whose own config did not change stays: not stopped
            await sup.forget(key, [t.bot_token.digest() for t, _ in changes.add if connection_key(t) == key])
        for team, index in changes.add:
            sup.configure(team, index)
        self._relabel(new)
        rt.config = replace(old, teams=new.teams)
        restart = _needs_restart(old, new)
        if restart:
            log.warning("config.reload_needs_restart", path=str(self._path), sections=restart)
        log.info(
            "config.reloaded",
            path=str(self._path),
            added=len(changes.add),
            removed=len(changes.remove),
            restarted=len(changes.restart),
            unchanged=len(changes.unchanged),
            teams=len(new.teams),
        )
        return changes

    def _relabel(self, new: Config) -> None:
        """Kept teams take their new name and position (labels only; sockets untouched)."""
        assert self._rt.supervisor is not None
        by_print = {fingerprint(t): (t, i) for i, t in enumerate(new.teams)}
        for team in self._rt.supervisor.teams:
            match = by_print.get(fingerprint(team.config))
            if match is not None:
                team.config, team.index = match
