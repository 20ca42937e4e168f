"""What the playground reads and how: a plugin tried by hand, the log tap, the records it follows."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from playground.playkit import ALICE, SHARED, T1, T2, running

from gridbot import logs
from gridbot.playground.app import redis_label
from gridbot.playground.command import plugin_names
from gridbot.playground.redis_switch import relayable, through
from gridbot.playground.stories import Stories
from gridbot.playground.tap import LogTap

SHOUT = """
from gridbot import Context, Plugin

plugin = Plugin("shout")


@plugin.message(r"^shout (?P<text>.+)$")
async def shout(ctx: Context, text: str) -> None:
    await ctx.reply(text.upper())


@plugin.message(r"^boom$")
async def boom(ctx: Context) -> None:
    raise RuntimeError("the plugin's own error")
"""


async def test_a_plugin_file_is_tried_by_hand_and_its_failures_are_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    suffix = uuid.uuid4().hex[:8]
    shout = tmp_path / f"shout_{suffix}.py"
    shout.write_text(SHOUT)
    broken = tmp_path / f"broken_{suffix}.py"
    broken.write_text("import a_module_that_does_not_exist\n")
    async with running(plugins=plugin_names([str(shout), f"{broken},echo"])) as api:
        org = await api.get("/api/org")
        assert [p["name"] for p in org["plugins"]] == ["shout", "echo"]
        timeline = await api.timeline()
        assert any(
            line.startswith(f"plugin broken_{suffix}: did not load") and "a_module_that_does_not_exist" in line
            for line in timeline
        ), timeline
        await api.connected(T1, T2)
        await api.say(ALICE, SHARED, "shout hello")
        assert (await api.story("shout hello", lambda s: s["replies"]))["replies"][0]["text"] == "HELLO"
        await api.say(ALICE, SHARED, "boom")
        story = await api.story("boom", lambda s: s["errors"])
        assert story["errors"] == ["shout.boom: RuntimeError: the plugin's own error"]
        assert story["handled_by"] == T1 and story["replies"] == []


def test_the_tap_copies_decisions_redacted_and_the_terminal_keeps_its_level() -> None:
    terminal = io.StringIO()
    logs.configure("info", stream=terminal, json=True)
    seen: list[tuple[str, str, dict[str, Any]]] = []
    tap = LogTap(lambda name, level, fields: seen.append((name, level, fields)), "info")
    log = logs.get_logger("test.playground")
    try:
        tap.install()
        log.debug("event.decided", team_id=T1, channel=SHARED, ts="1.2", type="message", decision="handled",
                  handled_by=T1, error="token xoxb-1234-abcdef leaked", raw={"whole": "frame"})  # fmt: skip
        log.debug("something.else", channel=SHARED)
        log.info("election.decided", channel=SHARED, team_id=T1, candidates=[T1, T2], decision="elected")
        tap.remove()
        log.debug("event.decided", team_id=T2, channel=SHARED, ts="1.3", type="message", decision="duplicate")
    finally:
        tap.remove()
        logs.configure("info")
    assert [(name, level) for name, level, _ in seen] == [("event.decided", "debug"), ("election.decided", "info")]
    decided = seen[0][2]
    assert decided["decision"] == "handled" and decided["handled_by"] == T1
    assert decided["error"] == "token xoxb-[redacted] leaked" and "raw" not in decided
    printed = [json.loads(line)["event"] for line in terminal.getvalue().splitlines()]
    assert printed == ["election.decided"]  # the debug lines the tap turned on never reach the terminal
    assert not logs.get_logger("x").bind().is_enabled_for(logging.DEBUG)



def test_stories_keep_memory_bounded_and_match_a_reply_to_the_message_it_answers() -> None:
    published: list[dict[str, Any]] = []
    stories = Stories(published.append, limit=3)
    for n in range(5):
        stories.posted(SHARED, f"{n}.0", user=ALICE, text=f"m{n}", source_team=T1)
    assert [s["text"] for s in stories.all()] == ["m2", "m3", "m4"]
    stories.decided({"type": "message", "channel": SHARED, "ts": "3.0", "team_id": T2, "decision": "handled"})
    stories.replied(team=T2, channel=SHARED, text="answer", ts="3.5", thread_ts=None)
    stories.replied(team=T1, channel=SHARED, text="nobody asked team one", ts="3.6", thread_ts=None)
    stories.replied(team=T1, channel=SHARED, text="in the thread", ts="3.7", thread_ts="4.0")
    by_text = {s["text"]: s for s in stories.all()}
    assert [r["text"] for r in by_text["m3"]["replies"]] == ["answer"]
    assert [r["text"] for r in by_text["m4"]["replies"]] == ["in the thread"]


def test_redis_credentials_stay_off_the_page_and_only_a_plain_url_is_relayed() -> None:
    url = "redis://gridbot:s3cr%40t@redis.internal:6380/2?health_check_interval=5"
    assert redis_label(url) == "redis://redis.internal:6380/2"
    assert relayable(url) == ("redis.internal", 6380)
    assert through(url, 4242) == "redis://gridbot:s3cr%40t@127.0.0.1:4242/2?health_check_interval=5"
    assert through("redis://localhost", 4242) == "redis://127.0.0.1:4242"
    for other in ("rediss://h:6380/0", "redis+sentinel://s1:26379/mymaster", "redis+cluster://h1:7000,h2:7000"):
        assert isinstance(relayable(other), str)
