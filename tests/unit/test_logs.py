"""A token passed anywhere into a log call never appears in the output."""

from __future__ import annotations

import io
import json

import pytest

from gridbot import logs
from gridbot.config import parse
from gridbot.secrets import Secret, redact

# Realistic token shapes, assembled here so that no file holds a token-shaped literal.
TOKEN = "-".join(["xoxb", "1234567890", "0987654321", "AbCdEfGhIjKlMnOp"])
APP = "xapp-1-A0123-456-deadbeefcafe"
REDIS = "redis://gridbot:s3cr3t-pw@redis.internal:6379/0"


def capture(fn: object) -> str:
    stream = io.StringIO()
    logs.configure("debug", stream=stream, json=True)
    fn()  # type: ignore[operator]
    return stream.getvalue()


@pytest.mark.parametrize(
    "call",
    [
        lambda log: log.info("event", token=TOKEN),
        lambda log: log.info(f"message with {TOKEN} inside"),
        lambda log: log.info("nested", data={"a": [TOKEN, {"b": APP}]}),
        lambda log: log.warning("url", url=REDIS),
        lambda log: log.info("obj", obj=Exception(f"bad {TOKEN}")),
        lambda log: log.info("key", **{TOKEN: 1}),
        lambda log: log.info("list", handlers=["echo.echo", TOKEN], n=3),  # a flat line: one pass
        lambda log: log.info("tuple", teams=("T1", f"url {REDIS}"), ok=True, none=None, x=1.5),
    ],
)
def test_tokens_and_passwords_are_redacted(call: object) -> None:
    out = capture(lambda: call(logs.get_logger("t")))  # type: ignore[operator]
    assert TOKEN not in out and APP not in out and "s3cr3t-pw" not in out
    assert out.strip()


def test_exception_text_is_redacted() -> None:
    def boom() -> None:
        try:
            raise RuntimeError(f"auth failed for {TOKEN} at {REDIS}")
        except RuntimeError:
            logs.get_logger("t").exception("failed")

    out = capture(boom)
    assert TOKEN not in out and "s3cr3t-pw" not in out
    assert "RuntimeError" in out


def test_registered_secret_that_does_not_look_like_a_token() -> None:
    Secret("plain-looking-password-value")
    out = capture(lambda: logs.get_logger("t").info("x", v="prefix plain-looking-password-value suffix"))
    assert "plain-looking-password-value" not in out


def test_a_secret_registered_after_a_log_line_is_redacted_in_the_next() -> None:
    """The redaction pattern is built lazily (a config of 1,000 teams registers 1,000 tokens)."""
    Secret("first-plain-secret-value")
    first = capture(lambda: logs.get_logger("t").info("x", v="first-plain-secret-value"))
    Secret("second-plain-secret-value")
    second = capture(lambda: logs.get_logger("t").info("x", a="first-plain-secret-value", b="second-plain-secret-value"))
    assert "first-plain-secret-value" not in first
    assert "plain-secret-value" not in second and second.count("[secret]") == 2


def test_json_lines_with_stable_keys() -> None:
    out = capture(
        lambda: logs.get_logger("t").info("event.decided", team_id="T1", channel="C1", decision="handled")
    )
    line = json.loads(out.strip().splitlines()[-1])
    assert line["event"] == "event.decided" and line["team_id"] == "T1" and line["level"] == "info"
    assert "timestamp" in line


def test_config_reprs_hide_tokens() -> None:
    config = parse(
        {
            "teams": [{"transport": "socket_mode", "bot_token": TOKEN, "app_token": APP}],
            "redis": {"url": REDIS},
        },
        {},
    )
    text = repr(config)
    assert TOKEN not in text and APP not in text and "s3cr3t-pw" not in text


def test_a_registered_secret_that_prefixes_another_token_does_not_unmask_its_rest() -> None:
    Secret("xoxb-1")  # a short secret somewhere in the process (a test's, a sloppy config's)
    assert redact("token xoxb-1234-abcdef leaked") == "token xoxb-[redacted] leaked"


def test_a_hot_line_is_the_line_structlog_writes() -> None:
    """HotLogger.info renders its line itself: same keys, order, values and redaction as the
    configured pipeline (a bound context variable included), a timestamp of the same shape,
    and nothing below the configured level."""
    import re

    import structlog

    fields = {"received_by": "T1", "handled_by": "T2", "decision": "handled", "ts": "1.000100",
              "handlers": ["echo.echo", TOKEN], "channel": None, "n": 3}  # fmt: skip
    hot = logs.HotLogger("gridbot.test")
    structlog.contextvars.bind_contextvars(request="r-1")
    try:
        lines = [capture(lambda: logs.get_logger("gridbot.test").info("event.handled", **fields))]
        lines.append(capture(lambda: hot.info("event.handled", dict(fields))))
    finally:
        structlog.contextvars.unbind_contextvars("request")
    slow, fast = (json.loads(line) for line in lines)
    assert TOKEN not in lines[1] and "echo.echo" in lines[1]
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"
    assert re.fullmatch(stamp, slow.pop("timestamp")) and re.fullmatch(stamp, fast.pop("timestamp"))
    assert list(fast.items()) == list(slow.items())
    assert fast["request"] == "r-1" and fast["level"] == "info"
    stream = io.StringIO()
    logs.configure("warning", stream=stream, json=True)
    hot.info("event.handled", dict(fields))
    assert stream.getvalue() == ""
    logs.configure("info")


def test_timestamps_read_as_utc_now() -> None:
    import datetime

    before = datetime.datetime.now(datetime.UTC)
    stamp = datetime.datetime.fromisoformat(logs._now_iso().replace("Z", "+00:00"))
    after = datetime.datetime.now(datetime.UTC)
    assert before <= stamp <= after


async def test_hot_lines_of_one_loop_turn_reach_the_stream_with_one_flush() -> None:
    import asyncio

    class Counting(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    stream = Counting()
    logs.configure("info", stream=stream, json=True)
    try:
        hot = logs.HotLogger("gridbot.test")
        for n in range(3):
            hot.info("event.handled", {"n": n})
        assert stream.flushes == 0  # written, flushed once the turn ends
        await asyncio.sleep(0)
        assert stream.flushes == 1
        assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == [0, 1, 2]
        hot.info("event.handled", {"n": 3})
        await asyncio.sleep(0)
        assert stream.flushes == 2
    finally:
        logs.configure("info")


def test_a_hot_line_reaches_processors_someone_else_added_after_it_was_first_used() -> None:
    """The playground's tap (and a test capturing logs) reconfigure structlog around gridbot's
    pipeline: a HotLogger used before must still pass its lines through the new processors."""
    import structlog

    seen: list[str] = []

    def tap(_logger: object, _method: str, event_dict: dict[str, object]) -> dict[str, object]:
        seen.append(str(event_dict["event"]))
        return event_dict

    logs.configure("info", stream=io.StringIO(), json=False)  # structlog's own path: binds
    hot = logs.HotLogger("gridbot.test")
    hot.info("event.handled", {"n": 1})
    saved = structlog.get_config()
    structlog.configure(processors=[tap, *saved["processors"]])
    try:
        hot.info("event.handled", {"n": 2})
    finally:
        structlog.configure(processors=saved["processors"])
        logs.configure("info")
    assert seen == ["event.handled"]
