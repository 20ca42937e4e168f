"""whois: ``whois @user`` tells who someone is across the org, whichever team they belong to."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from gridbot import Context, Plugin, UserNotFound
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
    try:
        person = await ctx.user(user_id)
    except UserNotFound:
        await ctx.reply(f"I can't find `{user_id}` in this org: they may have left, or the id is wrong.")
        return
    except SlackApiError as exc:
        error = exc.response.get("error")
        await ctx.reply(f"I couldn't look up `{user_id}` right now (Slack said `{error}`).")
        return
    if person.is_bot:
        await ctx.reply(f"<@{person.id}> is a bot user (`{person.id}`), not a person.")
        return
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
    await ctx.reply("\n".join(lines))
