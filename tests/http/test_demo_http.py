"""`gridbot demo --http`: the three transports side by side, every message answered once, Team
Three's copies delivered over HTTP by the simulator itself."""

from __future__ import annotations

import io

from gridbot.demo import run_demo


async def test_the_http_demo_answers_every_message_once() -> None:
    out = io.StringIO()
    assert await run_demo(out=out, http=True) == 0
    text = out.getvalue()
    assert "url_verification answered" in text  # the simulator verified gridbot's request URL
    assert "RTM 1, Socket Mode 1, HTTP 200" in text  # three transports, three copies
    assert 'T0TEAM003 answered "answered over http"' in text
    assert "attempts: first, http_timeout; the retry was answered 200; replies: 1" in text
    [twice] = [line for line in text.splitlines() if "'echo said once, delivered twice'" in line]
    assert "HTTP 200 in" in twice and ", 200 in" in twice  # two HTTP copies, both acknowledged
    assert "both acknowledged; replies to the twice-delivered message: 1" in text
    assert "answered 401; nothing reached a handler" in text
    assert "1 retries, 0 late, 0 non-2xx" in text
    assert "exactly once          yes" in text
