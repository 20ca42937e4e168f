"""`gridbot demo --http`: the three transports side by side, every message answered once."""

from __future__ import annotations

import io

from gridbot.demo import run_demo


async def test_the_http_demo_answers_every_message_once() -> None:
    out = io.StringIO()
    assert await run_demo(out=out, http=True) == 0
    text = out.getvalue()
    assert "RTM 1, Socket Mode 1, HTTP 200" in text  # three transports, three copies
    assert 'T0TEAM003 answered "answered over http"' in text
    assert "the retry was answered 200; replies to the retried message: 1" in text
    assert "answered 401; nothing reached a handler" in text
    assert "exactly once          yes" in text
