"""help: ``help`` lists the commands of every loaded plugin; ``help <command>`` explains one."""

from __future__ import annotations

from gridbot import Context, Plugin

plugin = Plugin("help")


@plugin.command("help", usage="help [command]")
async def help_(ctx: Context, args: list[str]) -> None:
    """help [command]: list the commands, or explain one."""
    how = f"`{ctx.command_prefix}<command>` or `@bot <command>`" if ctx.command_prefix else "`@bot <command>`"
    commands = sorted((r for r in ctx.routes if r.kind == "command"), key=lambda r: r.command or "")
    if args:
        wanted = args[0].lower().lstrip(ctx.command_prefix or "")
        found = [r for r in commands if r.command == wanted]
        if not found:
            await ctx.reply(f"There is no command `{wanted}`. Say `help` for the list.")
            return
        route = found[0]
        await ctx.reply(f"*{route.command}* ({route.plugin})\n{route.doc or 'No description.'}")
        return
    lines = [f"Commands (say {how}):"]
    for route in commands:
        lines.append(f"• *{route.command}*: {_summary(route.summary, route.command or '')}")
    listeners = [r for r in ctx.routes if r.kind == "message" and r.doc]
    if listeners:
        lines.append("I also answer to:")
        lines += [f"• {r.summary}" for r in listeners]
    await ctx.reply("\n".join(lines))


def _summary(summary: str, command: str) -> str:
    """A docstring's first line without a leading "command args:" usage, which help shows apart."""
    head, sep, tail = summary.partition(": ")
    if sep and head.split()[0].lower() == command:
        return f"{tail} (`{head}`)"
    return summary or "no description"
