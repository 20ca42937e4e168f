"""Every Redis key gridbot writes, in one place.

The part in braces is the Redis Cluster hash tag: every key that one decision touches carries the
same tag, so each Lua script stays in one slot. Keys carry ids only, never tokens or text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "gridbot"

    def election(self, channel: str) -> str:
        """Hash: team, candidates, epoch, pinned: the responsible team of one conversation."""
        return f"{self.prefix}:{{c:{channel}}}:elect"

    def claim(self, channel: str, key: str) -> str:
        """String: the team that handled one event of that conversation (TTL >= 15 min)."""
        return f"{self.prefix}:{{c:{channel}}}:ev:{key}"

    def loose_claim(self, key: str) -> str:
        """A claim for an event with no conversation (e.g. keyed on a Socket Mode event_id)."""
        return f"{self.prefix}:{{e:{key}}}:ev"

    def ack(self, key: str) -> str:
        """List with PX: the ack an interaction's handler answered with (JSON; ``null`` for an
        empty ack), recorded by the process that won its claim for copies elsewhere to answer
        with. Shares the ``{e:...}`` tag of the interaction's claim (:meth:`loose_claim`)."""
        return f"{self.prefix}:{{e:{key}}}:ack"

    def alive(self, team: str) -> str:
        """String with PX: the process whose socket for this team is up (the team's heartbeat)."""
        return f"{self.prefix}:{{t:{team}}}:alive"

    def roster(self) -> str:
        """Hash, the roster: team id -> JSON {bot_user_id, bot_id, enterprise_id} of every team any
        process serves (election candidates and the loop guard must know all of them)."""
        return f"{self.prefix}:{{g}}:teams"

    def kv(self, namespace: str, key: str) -> str:
        return f"{self.prefix}:{{p:{namespace}}}:kv:{key}"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:{{l:{name}}}:lock"

    def elections_pattern(self) -> str:
        return f"{self.prefix}:{{c:*}}:elect"

    def channel_of_election(self, key: str) -> str:
        return key[len(self.prefix) + 4 : -len("}:elect")]

    def process_status(self, instance: str) -> str:
        """String with PX: one running process's status document (``gridbot status`` reads these).

        Every status key shares the ``{st}`` hash tag, so one node holds them all under Cluster.
        """
        return f"{self.prefix}:{{st}}:proc:{instance}"

    def process_status_pattern(self) -> str:
        return f"{self.prefix}:{{st}}:proc:*"

    def owner(self, connection: str) -> str:
        """Hash with PX: holder, epoch: the process that serves one connection (ownership lease)."""
        return f"{self.prefix}:{{o:{connection}}}:owner"

    def owner_epoch(self, connection: str) -> str:
        """Counter: the connection's fencing epoch, bumped on every change of holder (no TTL)."""
        return f"{self.prefix}:{{o:{connection}}}:epoch"

    def successor(self, connection: str) -> str:
        """String with PX: the process a handoff of this connection was requested for."""
        return f"{self.prefix}:{{o:{connection}}}:next"

    def members(self) -> str:
        """Sorted set: live process id -> expiry (ms, Redis time). Shares ``{r}`` with members_info."""
        return f"{self.prefix}:{{r}}:members"

    def members_info(self) -> str:
        """Hash: process id -> JSON status document (what it owns, its teams, since when)."""
        return f"{self.prefix}:{{r}}:members:info"

    def install(self, install: str) -> str:
        """Hash: one installation's bot (token, refresh token, expiry, identity, ``failed``).

        ``install`` is ``team:<id>`` or ``org:<enterprise id>`` (gridbot.installs.model.install_id);
        every key of one installation shares its ``{i:...}`` tag, so a rotation is one script."""
        return f"{self.prefix}:{{i:{install}}}:bot"

    def installers(self, install: str) -> str:
        """Hash: installer user id -> JSON of that installer's part of the install (user token...)."""
        return f"{self.prefix}:{{i:{install}}}:users"

    def refresh_claim(self, install: str, refresh_digest: str) -> str:
        """String with PX: the process spending that (single-use) refresh token, named by its digest."""
        return f"{self.prefix}:{{i:{install}}}:spend:{refresh_digest}"

    def installs(self) -> str:
        """Set: the id of every stored installation (an index; the ``:bot`` hash is the truth)."""
        return f"{self.prefix}:{{ix}}:installs"

    def installs_version(self) -> str:
        """Integer: bumped by every write to any installation, so every process notices a change
        with one GET (the installs' watcher)."""
        return f"{self.prefix}:{{ix}}:version"

    def oauth_state(self, state_digest: str) -> str:
        """String with EX: one pending OAuth install, named by the SHA-256 of its ``state``."""
        return f"{self.prefix}:{{os:{state_digest}}}:state"
