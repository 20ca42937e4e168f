"""whois: who someone is across the org, whichever team they belong to.

``whois @user`` in a message, the ``/whois @user`` slash command, and the "Who wrote this?"
message shortcut (callback id ``whois_author``); the last two are answered to the asker alone.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError

from gridbot import Context, InteractiveContext, Plugin, UserNotFound
from gridbot.events import MENTION

plugin = Plugin("whois")


# In any channel, no prefix needed; a DM "whois @x" is the command instead (one answer).
@plugin.message(rf"^\s*whois\s+(?P<text>{MENTION.pattern})\s*$")
async def whois(ctx: Context, text: str) -> None:
    """whois @user: their stable id, home team, teams in the org, and org admin/owner flags."""
    await whois_command(ctx, text)


@plugin.command("whois", usage="whois @user")
async def whois_command(ctx: Context, text: str) -> None:
    """whois @user: their stable id, home team, teams in the org, and org admin/owner flags."""
    m = MENTION.search(text)
    if m is None:
        await ctx.reply("Usage: `whois @user` (mention the person, so Slack gives me their id).")
        return
    await _answer(ctx, m.group(1))


async def _answer(ctx: Context, user_id: str) -> None:
    await ctx.reply(await profile_text(ctx, user_id))


@plugin.slash("/whois")
async def whois_slash(ctx: InteractiveContext, text: str) -> None:
    """/whois @user: the same answer, seen by the asker alone."""
    m = MENTION.search(text)
    if m is None:
        await ctx.ack(text="Usage: `/whois @user` (mention the person, so Slack gives me their id).")
        return
    await ctx.ack()  # the lookup may take longer than Slack waits for the ack
    await ctx.respond(await profile_text(ctx, m.group(1)))


@plugin.message_shortcut("whois_author")
async def who_wrote_this(ctx: InteractiveContext, message: dict[str, Any]) -> None:
    """"Who wrote this?" on a message: its author's profile, seen by the asker alone."""
    await ctx.ack()
    author = message.get("user")
    if not isinstance(author, str) or message.get("bot_id"):
        await ctx.respond("That message was written by an app, not a person.")
        return
    mapping = message.get("user_id_mapping_old_to_new")
    stable = mapping.get(author, author) if isinstance(mapping, dict) else author
    await ctx.respond(await profile_text(ctx, stable))


async def profile_text(ctx: Context, user_id: str) -> str:
    """The answer about ``user_id``: who they are across the org, or why that is not known."""
    try:
        person = await ctx.user(user_id)
    except UserNotFound:
        return f"I can't find `{user_id}` in this org: they may have left, or the id is wrong."
    except SlackApiError as exc:
        error = exc.response.get("error")
        return f"I couldn't look up `{user_id}` right now (Slack said `{error}`)."
    if person.is_bot:
        return f"<@{person.id}> is a bot user (`{person.id}`), not a person."
    home = await ctx.team_name(person.home_team) if person.home_team else "unknown"
    teams = [f"{await ctx.team_name(t)} (`{t}`)" for t in person.teams]
    lines = [
        f"*{person.real_name or person.name}* (@{person.name})",
        f"• id: `{person.id}`" + (f" (seen here as `{user_id}`)" if user_id != person.id else ""),
        f"• home team: {home} (`{person.home_team}`)",
        f"• teams in the org: {', '.join(teams) or 'none'}",
        f"• org admin: {'yes' if person.is_admin else 'no'} · org owner: {'yes' if person.is_owner else 'no'}"
        + (" · guest" if person.is_restricted else ""),
    ]
    if person.deleted:
        lines.append("• this account is deactivated")
    return "\n".join(lines)
