"""The HTTP transport's config keys, its outcome registry and its request parser, each alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbot.config import ConfigError, connection_key, parse
from gridbot.dedup.outcomes import Outcomes
from gridbot.events import Event
from gridbot.transport.http_wire import BadRequest, parse_head


def _http_team(**extra: object) -> dict[str, object]:
    return {"transport": "http", "bot_token": "xoxb-1", "signing_secret": "${SIGNING}", **extra}


def test_http_teams_need_a_signing_secret_and_an_events_port() -> None:
    with pytest.raises(ConfigError) as error:
        parse({"teams": [{"transport": "http", "bot_token": "xoxb-1", "connections": 2}]}, env={})
    assert error.value.problems == [
        'events.port: required when a team uses transport = "http"',
        'teams[0].connections: only used when transport = "socket_mode"',
        'teams[0].signing_secret: required when transport = "http"',
    ]
    with pytest.raises(ConfigError) as error:
        parse({"teams": [{"transport": "rtm", "bot_token": "xoxb-1", "signing_secret": "s"}]}, env={})
    assert error.value.problems == ['teams[0].signing_secret: only used when transport = "http"']


def test_the_events_section() -> None:
    config = parse(
        {
            "teams": [_http_team(), _http_team(bot_token="xoxb-2")],
            "events": {"host": "0.0.0.0", "port": 8443},
        },
        env={"SIGNING": "a1b2c3d4e5f6a7b8"},
    )
    assert (config.events.host, config.events.port, config.events.path) == ("0.0.0.0", 8443, "/slack/events")
    a, b = config.teams
    assert (
        a.signing_secret is not None
        and a.signing_secret.get() == "a1b2c3d4e5f6a7b8"
        and "a1b2c3" not in repr(a)
    )
    assert connection_key(a) == connection_key(b) and connection_key(a).startswith("http:")  # one app
    with pytest.raises(ConfigError) as error:
        parse({"events": {"port": 1, "ack_timeout": 3.5, "path": "slack", "max_body_bytes": 0, "nope": 1}})
    assert error.value.problems == [
        "events.ack_timeout: must be below 3 seconds (Slack's ack deadline)",
        "events.max_body_bytes: must be greater than 0",
        "events.nope: unknown key",
        "events.path: a path starting with / (not /healthz)",
    ]


def _copy(event_id: str | None) -> tuple[Event, tuple[str, ...]]:
    event = Event("T1", None, "message", None, "C1", "1.0", None, "U1", None, None, None, "", event_id, {})
    return event, ("T1",)


def test_outcomes_reach_each_waiter_once() -> None:
    got: list[tuple[str, str]] = []
    outcomes = Outcomes()
    assert not outcomes
    outcomes.expect("Ev1", lambda o: got.append(("a", o)))
    outcomes.expect("Ev1", lambda o: got.append(("b", o)))  # a retry while the first waits
    outcomes.expect("Ev2", lambda o: got.append(("c", o)))
    outcomes.settle([_copy("Ev1"), _copy(None)], "handled")
    outcomes.settle([_copy("Ev1")], "duplicate")  # nobody waits any more
    assert got == [("a", "handled"), ("b", "handled")]
    outcomes.hold("C1:key", [_copy("Ev2")])  # a standby copy: its waiter follows the hold
    outcomes.settle_one("Ev2", "handled")
    assert len(got) == 2
    outcomes.settle_key("C1:key", "rescued")
    assert got[-1] == ("c", "rescued") and not outcomes


def test_outcomes_when_the_store_is_unreachable_and_on_cancel() -> None:
    got: list[str] = []
    outcomes = Outcomes()

    def ack(outcome: str) -> None:
        got.append(outcome)

    outcomes.expect("Ev1", ack)
    outcomes.cancel("Ev1", ack)
    assert not outcomes
    outcomes.expect("Ev2", ack)
    outcomes.hold("k", [_copy("Ev2")])
    outcomes.expect("Ev3", ack)
    outcomes.unavailable()
    assert got == ["unavailable", "unavailable"] and not outcomes and not outcomes.store_ok
    outcomes.available()
    assert outcomes.store_ok


def test_the_request_parser_reads_what_slack_sends() -> None:
    raw = b"POST /slack/events?x=1 HTTP/1.1\r\nHost: a\r\ncontent-type: application/json; charset=utf-8\r\nContent-Length: 12\r\nX-Slack-Signature: v0=ab"
    head = parse_head(raw, len(raw) + 4)
    assert (head.method, head.path, head.length, head.close, head.content_type) == (
        "POST", "/slack/events", 12, False, "application/json"
    )  # fmt: skip
    assert head.headers["x-slack-signature"] == "v0=ab"
    assert parse_head(b"GET /healthz HTTP/1.0", 25).close


@settings(max_examples=300, derandomize=True)
@given(st.binary(max_size=400))
def test_the_request_parser_rejects_anything_else_with_a_status(raw: bytes) -> None:
    """Any bytes at all: a parsed head or a BadRequest with a 4xx status, nothing else."""
    try:
        head = parse_head(raw, len(raw) + 4)
    except BadRequest as exc:
        assert 400 <= exc.status < 500 and exc.reason
    else:
        assert head.length >= 0 and head.path.startswith("/")
