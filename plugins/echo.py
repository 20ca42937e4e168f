"""echo: ``echo <text>`` answers with <text>, in the same conversation and thread."""

from __future__ import annotations

from gridbot import Context, Plugin

plugin = Plugin("echo")


@plugin.message(r"^echo (?P<text>.+)$")
async def echo(ctx: Context, text: str) -> None:
    """echo <text>: say <text> back."""
    await ctx.reply(text)
