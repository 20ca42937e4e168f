"""The org changing while it runs: members join and leave, channels are shared and unshared,
channels, users and teams are added; each change is delivered as the events Slack sends for it.

References (slack-protocol-notes.md A unless named):
- ``member_joined_channel`` goes to the channel's members, the bot that joined included ("Only
  channel members receive it"; "``user == own bot id`` is the 'bot was added' signal"), with the
  ``channel_join`` message (docs.slack.dev/reference/events/message/channel_join); the bot that
  joined also gets ``channel_joined`` / ``group_joined``, which are RTM-only.
- Leaving or being removed: the bot that left gets ``channel_left`` / ``group_left`` (with the
  ``actor_id`` who removed it), the remaining members ``member_left_channel`` and the
  ``channel_leave`` message [infer: not in the reference files; docs.slack.dev/reference/events/
  channel_left and member_left_channel describe them].
- ``channel_shared`` / ``channel_unshared`` are Events-API-only: Socket Mode gets them, RTM does not.
  A team unshared from a channel loses it: its bot gets ``channel_left`` / ``group_left`` [infer].
- Grid migration: ``grid_migration_started`` / ``grid_migration_finished``, and while it lasts the
  team's calls answer ``team_added_to_org`` (section H; admin-apps-api.txt's error table).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from . import render
from .actions import OrgActions
from .delivery import Fanout, constant
from .model import BotRef, Conversation, Installation, Team, Topology, User
from .state import OrgState
from .translate import Viewer

Member = User | str  # a user, or a team id standing for that team's bot(s)


class OrgChanges:
    def __init__(self, state: OrgState, fanout: Fanout, actions: OrgActions) -> None:
        self._state = state
        self._fanout = fanout
        self._actions = actions

    # -- lookups --------------------------------------------------------------------------------

    def _conv(self, channel: str) -> Conversation:
        conv = self._state.conversation(channel)
        if conv is None:
            raise ValueError(f"unknown conversation {channel!r}")
        return conv

    def _user(self, user_id: str) -> User:
        user = self._state.topology.user_by_id.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id!r}")
        return user

    def _bots_of(self, team: str) -> list[BotRef]:
        bots = [b for b in self._state.topology.bots_on(team) if self._state.is_live(b)]
        if not bots:
            raise ValueError(f"no live app installation on team {team!r}")
        return bots

    def _update(self, conv: Conversation, **changes: Any) -> Conversation:
        new = dataclasses.replace(conv, **changes)
        topo = self._state.topology
        convs = tuple(new if c.id == conv.id else c for c in topo.conversations)
        self._state.topology = dataclasses.replace(topo, conversations=convs)
        return new

    # -- joining and leaving --------------------------------------------------------------------

    async def join(
        self, channel: str, *, user: str | None = None, team: str | None = None, inviter: str | None = None
    ) -> str:
        """A user (``user``) or a team's bot (``team``) joins; returns the channel_join ts."""
        conv = self._conv(channel)
        if conv.kind == "im":
            raise ValueError("nobody joins a DM")
        by = self._user(inviter) if inviter else None
        if (user is None) == (team is None):
            raise ValueError("pass exactly one of user= or team=")
        if user is not None:
            person = self._user(user)
            if person.id in conv.members:
                raise ValueError(f"{person.id} is already in {conv.id}")
            if not set(person.teams) & set(conv.teams):
                raise ValueError(f"{person.id} belongs to no team of {conv.id}")
            conv = self._update(conv, members=(*conv.members, person.id))
            source = self._state.source_team(person, conv)
            await self._member_event(conv, "member_joined_channel", person, source, by)
            msg = await self._actions.post(
                conv,
                f"<@{person.id}> has joined the channel",
                source_team=source,
                user=person,
                subtype="channel_join",
                inviter=by,
            )
            return msg.ts
        assert team is not None
        if team not in conv.teams:
            raise ValueError(f"team {team!r} is not connected to {conv.id}")
        bots = self._bots_of(team)
        if team in conv.bot_teams:
            raise ValueError(f"the bot of {team} is already in {conv.id}")
        conv = self._update(conv, bot_teams=(*conv.bot_teams, team))
        state = self._state
        # channel_joined/group_joined: RTM-only, to the bot that joined
        await self._fanout.to_bots(
            bots, lambda v: _channel_joined(state, conv, v), team, conv.id, socket_mode=False
        )
        await self._member_event(conv, "member_joined_channel", bots[0], team, by)
        msg = await self._actions.post(
            conv,
            f"<@{bots[0].installation.bot_user_id}> has joined the channel",
            source_team=team,
            bot=bots[0],
            subtype="channel_join",
            inviter=by,
        )
        return msg.ts

    async def leave(
        self, channel: str, *, user: str | None = None, team: str | None = None, by: str | None = None
    ) -> None:
        """A user or a team's bot leaves; with ``by``, that user removed them."""
        conv = self._conv(channel)
        actor = self._user(by) if by else None
        if (user is None) == (team is None):
            raise ValueError("pass exactly one of user= or team=")
        if user is not None:
            person = self._user(user)
            if person.id not in conv.members:
                raise ValueError(f"{person.id} is not in {conv.id}")
            source = self._state.source_team(person, conv)
            await self._member_event(conv, "member_left_channel", person, source, None)
            await self._actions.post(
                conv,
                f"<@{person.id}> has left the channel",
                source_team=source,
                user=person,
                subtype="channel_leave",
            )
            self._update(conv, members=tuple(m for m in conv.members if m != person.id))
            return
        assert team is not None
        if team not in conv.bot_teams:
            raise ValueError(f"the bot of {team} is not in {conv.id}")
        await self._bot_gone(conv, team, actor)

    async def _bot_gone(self, conv: Conversation, team: str, actor: User | None) -> Conversation:
        bots = [b for b in self._state.topology.bots_on(team) if self._state.is_live(b)]
        conv = self._update(conv, bot_teams=tuple(t for t in conv.bot_teams if t != team))
        kind = "channel_left" if conv.kind == "channel" else "group_left"
        for bot in bots:
            event_ts = self._state.clock.next()

            def left(v: Viewer, bot: BotRef = bot, ts: str = event_ts) -> dict[str, Any]:
                shown = bot.installation.bot_user_id if actor is None else v.user_id(actor)
                return {"type": kind, "channel": conv.id, "actor_id": shown, "event_ts": ts}

            await self._fanout.to_bots([bot], left, team, conv.id)
        if bots:
            await self._member_event(conv, "member_left_channel", bots[0], team, None)
            await self._actions.post(
                conv,
                f"<@{bots[0].installation.bot_user_id}> has left the channel",
                source_team=team,
                bot=bots[0],
                subtype="channel_leave",
            )
        return conv

    async def _member_event(
        self, conv: Conversation, kind: str, who: User | BotRef, team: str, inviter: User | None
    ) -> None:
        enterprise = self._state.topology.enterprise.id
        event_ts = self._state.clock.next()
        channel_type = "C" if conv.kind == "channel" else "G"

        def view(v: Viewer) -> dict[str, Any]:
            user = who.installation.bot_user_id if isinstance(who, BotRef) else v.user_id(who)
            event: dict[str, Any] = {
                "type": kind,
                "user": user,
                "channel": conv.id,
                "channel_type": channel_type,
                "team": team,
                "enterprise": enterprise,
                "event_ts": event_ts,
            }
            if inviter is not None:
                event["inviter"] = v.user_id(inviter)
            return event

        await self._fanout.to_conversation(conv, view, team)

    # -- sharing --------------------------------------------------------------------------------

    async def share(self, channel: str, team: str) -> None:
        """Connect ``team`` to the channel; its members (and bot) may then be added."""
        conv = self._conv(channel)
        if team not in self._state.topology.team_by_id:
            raise ValueError(f"unknown team {team!r}")
        if team in conv.teams:
            raise ValueError(f"{conv.id} is already shared with {team}")
        conv = self._update(conv, teams=(*conv.teams, team))
        event = {
            "type": "channel_shared",
            "connected_team_id": team,
            "channel": conv.id,
            "event_ts": self._state.clock.next(),
        }
        await self._fanout.to_conversation(conv, constant(event), conv.host_team, rtm=False)

    async def unshare(self, channel: str, team: str) -> None:
        """Disconnect ``team``: its bot and the members only it connected lose the channel."""
        conv = self._conv(channel)
        if team not in conv.teams:
            raise ValueError(f"{conv.id} is not shared with {team}")
        if team == conv.host_team:
            raise ValueError("the host team cannot be unshared from its own channel")
        event = {
            "type": "channel_unshared",
            "previously_connected_team_id": team,
            "channel": conv.id,
            "is_ext_shared": False,
            "event_ts": self._state.clock.next(),
        }
        await self._fanout.to_conversation(conv, constant(event), conv.host_team, rtm=False)
        if team in conv.bot_teams:
            conv = await self._bot_gone(conv, team, None)
        teams = tuple(t for t in conv.teams if t != team)
        users = self._state.topology.user_by_id
        members = tuple(m for m in conv.members if set(users[m].teams) & set(teams))
        self._update(conv, teams=teams, members=members)

    # -- growing the org ------------------------------------------------------------------------

    def _replace(self, **changes: Any) -> Topology:
        topo = dataclasses.replace(self._state.topology, **changes)
        self._state.topology = topo
        return topo

    async def create_channel(self, conv: Conversation, *, creator: str | None = None) -> None:
        """A new conversation (its bot_teams' bots and members in it from the start); a public
        channel is announced to its teams' apps with ``channel_created``
        (docs.slack.dev/reference/events/channel_created)."""
        topo = self._state.topology
        if conv.id in topo.conversation_by_id:
            raise ValueError(f"conversation {conv.id!r} exists")
        self._replace(conversations=(*topo.conversations, conv))
        if conv.kind != "channel":
            return
        author = self._user(creator) if creator else None
        created = int(float(self._state.clock.next()))
        for team in conv.teams:
            for bot in [b for b in self._state.topology.bots_on(team) if self._state.is_live(b)]:

                def view(v: Viewer) -> dict[str, Any]:
                    channel = {"id": conv.id, "name": conv.name, "created": created}
                    if author is not None:
                        channel["creator"] = v.user_id(author)
                    return {"type": "channel_created", "channel": channel}

                await self._fanout.to_bots([bot], view, team, None)

    async def add_user(self, user: User) -> None:
        """A new person in the org: ``team_join`` on each of their teams."""
        topo = self._replace(users=(*self._state.topology.users, user))
        for team in user.teams:
            for bot in [b for b in topo.bots_on(team) if self._state.is_live(b)]:
                viewer = Viewer(team, bot.app.translation_layer)
                body = render.user_object(topo, user, viewer)
                await self._fanout.to_bots([bot], constant({"type": "team_join", "user": body}), team, None)

    async def add_team(self, team: Team, users: Iterable[User] = ()) -> None:
        """A workspace joins the org."""
        topo = self._state.topology
        self._replace(teams=(*topo.teams, team), users=(*topo.users, *users))

    async def install(self, app_id: str, installation: Installation) -> BotRef:
        """Install an app on a team (a new bot token, which the runtime must be given).

        Installing again on a team it was uninstalled from is a reinstall: the new installation
        (a new bot token; the old one stays revoked) replaces the old one, and the bot is back in
        the conversations it was in. Installing on a team where it is live is refused.
        """
        topo = self._state.topology
        app = topo.app_by_id.get(app_id)
        if app is None:
            raise ValueError(f"unknown app {app_id!r}")
        key = (app_id, installation.team)
        if any(i.team == installation.team for i in app.installations) and key not in self._state.uninstalled:
            raise ValueError(f"app {app_id!r} is installed on {installation.team!r}: uninstall it first")
        kept = tuple(i for i in app.installations if i.team != installation.team)
        new_app = dataclasses.replace(app, installations=(*kept, installation))
        apps = tuple(new_app if a.id == app_id else a for a in topo.apps)
        topo = self._replace(apps=apps)
        self._state.uninstalled.discard((app_id, installation.team))
        return next(b for b in topo.bots if b.key == (app_id, installation.team))

    # -- Grid migration -------------------------------------------------------------------------

    async def start_migration(self, team: str, error: str = "team_added_to_org") -> None:
        enterprise = self._state.topology.enterprise.id
        await self._fanout.to_team({"type": "grid_migration_started", "enterprise_id": enterprise}, team)
        self._state.migrating[team] = error

    async def finish_migration(self, team: str) -> None:
        self._state.migrating.pop(team, None)
        enterprise = self._state.topology.enterprise.id
        await self._fanout.to_team({"type": "grid_migration_finished", "enterprise_id": enterprise}, team)


def _channel_joined(state: OrgState, conv: Conversation, viewer: Viewer) -> dict[str, Any]:
    """``channel_joined``/``group_joined`` for the bot that was just added."""
    shared = len(conv.teams) > 1
    return {
        "type": "channel_joined" if conv.kind == "channel" else "group_joined",
        "channel": {
            "id": conv.id,
            "name": conv.name,
            "is_channel": conv.kind == "channel",
            "is_group": conv.kind != "channel",
            "is_member": True,
            "is_shared": shared,
            "is_org_shared": shared,
            "members": render.member_ids(state, conv, viewer),
        },
    }
