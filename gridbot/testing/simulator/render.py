"""How one stored object looks to one reader (a team, through an app): messages, users, channels.

The translation layer (translate.py) is applied here, to every user id a reader is shown.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .messages import Message
from .model import BotRef, Conversation, Topology, User
from .state import OrgState
from .translate import Viewer, render_text


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


def message_body(topo: Topology, msg: Message, viewer: Viewer) -> dict[str, Any]:
    """The message fields without channel/event_ts, as ``viewer`` sees them."""
    mapping: dict[str, str] = {}
    if msg.bot is not None:
        body = _bot_body(msg, msg.bot)
    else:
        assert msg.user is not None
        body = _user_body(msg, msg.user, viewer, mapping)
    body["text"] = render_text(topo, msg.text, viewer, mapping)
    if msg.subtype is not None:
        body["subtype"] = msg.subtype
        if msg.inviter is not None:
            body["inviter"] = _shown(msg.inviter, viewer, mapping)
    if msg.thread_ts is not None:
        body["thread_ts"] = msg.thread_ts
    if msg.blocks is not None:
        body["blocks"] = msg.blocks
    if msg.edited is not None:
        editor, edit_ts = msg.edited
        who = (
            editor.installation.bot_user_id if isinstance(editor, BotRef) else _shown(editor, viewer, mapping)
        )
        body["edited"] = {"user": who, "ts": edit_ts}
    if mapping:
        body["user_id_mapping_old_to_new"] = mapping
    return body


def _shown(user: User, viewer: Viewer, mapping: dict[str, str]) -> str:
    shown = viewer.user_id(user)
    if shown != user.id:
        mapping[shown] = user.id
    return shown


def _user_body(msg: Message, user: User, viewer: Viewer, mapping: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "message",
        "user": _shown(user, viewer, mapping),
        "text": msg.text,
        "ts": msg.ts,
        "team": user.home_team,
        "user_team": user.home_team,
        "source_team": msg.source_team,
    }
    if msg.subtype is None:
        body["client_msg_id"] = msg.client_msg_id
    if user.home_team != viewer.team:
        body["user_profile"] = user_profile(user)
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


def message_event(topo: Topology, msg: Message, viewer: Viewer) -> dict[str, Any]:
    event = message_body(topo, msg, viewer)
    event["channel"] = msg.channel
    event["event_ts"] = msg.ts
    return event


def message_changed(
    topo: Topology, old: Message, new: Message, edit_ts: str, viewer: Viewer
) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_changed",
        "channel": new.channel,
        "hidden": True,
        "ts": edit_ts,
        "event_ts": edit_ts,
        "message": message_body(topo, new, viewer),
        "previous_message": message_body(topo, old, viewer),
    }


def message_deleted(topo: Topology, old: Message, delete_ts: str, viewer: Viewer) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "channel": old.channel,
        "hidden": True,
        "deleted_ts": old.ts,
        "ts": delete_ts,
        "event_ts": delete_ts,
        "previous_message": message_body(topo, old, viewer),
    }


def conversation(state: OrgState, conv: Conversation, viewer: Viewer, *, is_member: bool) -> dict[str, Any]:
    """The conversation object (slack-protocol-notes.md, B: the shared fields)."""
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
        "context_team_id": viewer.team,
        "enterprise_id": topo.enterprise.id,
        "is_member": is_member,
        "num_members": len(conv.members) + len(state.bots_in(conv)),
    }
    if conv.kind == "im":
        if conv.members:
            obj["user"] = viewer.user_id(topo.user_by_id[conv.members[0]])
    else:
        obj["name"] = conv.name
        obj["name_normalized"] = conv.name
    return obj


def user_object(topo: Topology, user: User, viewer: Viewer) -> dict[str, Any]:
    """users.info / users.list: ``id`` in the reader's ids, ``enterprise_user.id`` the W id
    (enterprise-grid-developer-guide, "User object changes")."""
    ent = topo.enterprise
    return {
        "id": viewer.user_id(user),
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


def member_ids(state: OrgState, conv: Conversation, viewer: Viewer) -> list[str]:
    """Everyone in ``conv`` as ``viewer`` names them: people first, then bot users."""
    topo = state.topology
    people = [viewer.user_id(topo.user_by_id[u]) for u in conv.members]
    return people + [b.installation.bot_user_id for b in state.bots_in(conv)]
