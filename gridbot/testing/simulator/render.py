"""How one stored object looks to one receiving team (the translation layer lives here)."""

from __future__ import annotations

import hashlib
from typing import Any

from .model import BotRef, Conversation, Topology, User
from .state import Message, OrgState


def user_id_for(user: User, team: str) -> str:
    """The id ``team`` sees: the legacy U id where the translation layer has one, else the W id."""
    return user.legacy_ids.get(team, user.id)


def user_profile(user: User) -> dict[str, Any]:
    first = user.real_name.split(" ")[0] if user.real_name else user.name
    avatar = hashlib.sha1(user.id.encode()).hexdigest()[:12]
    return {
        "avatar_hash": avatar,
        "image_72": f"https://avatars.sim.invalid/{avatar}_72.png",
        "first_name": first,
        "real_name": user.real_name,
        "display_name": user.name,
        "team": user.home_team,
        "name": user.name,
        "is_restricted": user.is_restricted,
        "is_ultra_restricted": False,
    }


def message_body(msg: Message, team: str) -> dict[str, Any]:
    """The message fields without channel/event_ts, as seen by ``team``."""
    if msg.bot is not None:
        body = _bot_body(msg, msg.bot)
    else:
        assert msg.user is not None
        body = _user_body(msg, msg.user, team)
    if msg.thread_ts is not None:
        body["thread_ts"] = msg.thread_ts
    if msg.blocks is not None:
        body["blocks"] = msg.blocks
    if msg.edited is not None:
        editor, edit_ts = msg.edited
        body["edited"] = {"user": user_id_for(editor, team), "ts": edit_ts}
    return body


def _user_body(msg: Message, user: User, team: str) -> dict[str, Any]:
    shown = user_id_for(user, team)
    body: dict[str, Any] = {
        "type": "message",
        "user": shown,
        "text": msg.text,
        "ts": msg.ts,
        "client_msg_id": msg.client_msg_id,
        "team": user.home_team,
        "user_team": user.home_team,
        "source_team": msg.source_team,
    }
    if user.home_team != team:
        body["user_profile"] = user_profile(user)
    if shown != user.id:
        body["user_id_mapping_old_to_new"] = {shown: user.id}
    return body


def _bot_body(msg: Message, bot: BotRef) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": msg.text,
        "ts": msg.ts,
        "bot_id": bot.installation.bot_id,
        "user": bot.installation.bot_user_id,
        "app_id": bot.app.id,
        "username": bot.app.name,
        "team": bot.team,
        "source_team": bot.team,
        "user_team": bot.team,
    }


def message_event(msg: Message, team: str) -> dict[str, Any]:
    event = message_body(msg, team)
    event["channel"] = msg.channel
    event["event_ts"] = msg.ts
    return event


def message_changed(old: Message, new: Message, edit_ts: str, team: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_changed",
        "channel": new.channel,
        "hidden": True,
        "ts": edit_ts,
        "event_ts": edit_ts,
        "message": message_body(new, team),
        "previous_message": message_body(old, team),
    }


def message_deleted(old: Message, delete_ts: str, team: str) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "channel": old.channel,
        "hidden": True,
        "deleted_ts": old.ts,
        "ts": delete_ts,
        "event_ts": delete_ts,
        "previous_message": message_body(old, team),
    }


def conversation(state: OrgState, conv: Conversation, team: str, *, is_member: bool) -> dict[str, Any]:
    topo = state.topology
    shared = len(conv.teams) > 1
    obj: dict[str, Any] = {
        "id": conv.id,
        "is_channel": conv.kind == "channel",
        "is_group": conv.kind == "private",
        "is_im": conv.kind == "im",
        "is_mpim": conv.kind == "mpim",
        "is_private": conv.kind != "channel",
        "is_archived": False,
        "is_general": False,
        "is_shared": shared,
        "is_org_shared": shared,
        "is_ext_shared": False,
        "is_pending_ext_shared": False,
        "shared_team_ids": list(conv.teams),
        "internal_team_ids": list(conv.teams),
        "conversation_host_id": conv.host_team,
        "context_team_id": team,
        "enterprise_id": topo.enterprise.id,
        "is_member": is_member,
        "num_members": len(conv.members) + len(state.bots_in(conv)),
    }
    if conv.kind == "im":
        if conv.members:
            obj["user"] = user_id_for(topo.user_by_id[conv.members[0]], team)
    else:
        obj["name"] = conv.name
        obj["name_normalized"] = conv.name
    return obj


def user_object(topo: Topology, user: User) -> dict[str, Any]:
    ent = topo.enterprise
    return {
        "id": user.id,
        "team_id": user.home_team,
        "name": user.name,
        "real_name": user.real_name,
        "deleted": False,
        "is_admin": user.is_admin,
        "is_owner": user.is_owner,
        "is_primary_owner": False,
        "is_restricted": user.is_restricted,
        "is_ultra_restricted": False,
        "is_bot": False,
        "is_app_user": False,
        "profile": {
            "real_name": user.real_name,
            "display_name": user.name,
            "team": user.home_team,
        },
        "enterprise_user": {
            "id": user.id,
            "enterprise_id": ent.id,
            "enterprise_name": ent.name,
            "is_admin": user.is_admin,
            "is_owner": user.is_owner,
            "teams": list(user.teams),
        },
    }


def bot_user_object(bot: BotRef) -> dict[str, Any]:
    inst = bot.installation
    return {
        "id": inst.bot_user_id,
        "team_id": inst.team,
        "name": bot.app.name,
        "real_name": bot.app.name,
        "deleted": False,
        "is_admin": False,
        "is_owner": False,
        "is_restricted": False,
        "is_bot": True,
        "is_app_user": False,
        "profile": {
            "real_name": bot.app.name,
            "display_name": bot.app.name,
            "team": inst.team,
            "bot_id": inst.bot_id,
            "api_app_id": bot.app.id,
        },
    }


def channel_joined(state: OrgState, conv: Conversation, team: str) -> dict[str, Any]:
    """``channel_joined``/``group_joined`` for the bot of ``team`` that was just added."""
    topo = state.topology
    members = [user_id_for(topo.user_by_id[u], team) for u in conv.members]
    members += [b.installation.bot_user_id for b in state.bots_in(conv)]
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
            "members": members,
        },
    }


def member_joined(state: OrgState, conv: Conversation, bot: BotRef) -> dict[str, Any]:
    return {
        "type": "member_joined_channel",
        "user": bot.installation.bot_user_id,
        "channel": conv.id,
        "channel_type": "C" if conv.kind == "channel" else "G",
        "team": bot.team,
        "enterprise": state.topology.enterprise.id,
    }
