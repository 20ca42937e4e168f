from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from gridbot.events import FrameError, _normalise, normalise, parse_frame

_MISSING = object()


def test_shared_channel_message_is_normalised_with_stable_user() -> None:
    payload = {
        "type": "message",
        "channel": "C1",
        "user": "U0BOB",
        "text": "hi <@U0BOB>",
        "ts": "1.000100",
        "thread_ts": "0.5",
        "source_team": "T2",
        "user_team": "T2",
        "user_id_mapping_old_to_new": {"U0BOB": "W0BOB"},
    }
    event = normalise(payload, team_id="T1", enterprise_id="E1")
    assert event.user == "W0BOB"
    assert event.text == "hi <@W0BOB>"
    assert (event.team_id, event.enterprise_id, event.channel, event.ts, event.thread_ts) == (
        "T1",
        "E1",
        "C1",
        "1.000100",
        "0.5",
    )
    assert (event.source_team, event.user_team) == ("T2", "T2")


def test_copies_share_a_dedup_key_and_edits_get_their_own() -> None:
    a = normalise(
        {"type": "message", "channel": "C1", "ts": "1.0", "user": "W1"}, team_id="T1", enterprise_id=None
    )
    b = normalise(
        {"type": "message", "channel": "C1", "ts": "1.0", "user": "W1"}, team_id="T2", enterprise_id=None
    )
    edit = normalise(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "C1",
            "ts": "2.0",
            "message": {"ts": "1.0"},
        },
        team_id="T1",
        enterprise_id=None,
    )
    assert a.dedup_key == b.dedup_key
    assert edit.dedup_key != a.dedup_key


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1,2]", "not_an_object"),
        (b"x" * (1 << 20 + 1), "oversized"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_frame(data)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"channel": "C1"}, "no_type"),
        ({"type": "message", "channel": "C1"}, "message_without_channel_or_ts"),
        ({"type": "message", "ts": "1.0"}, "message_without_channel_or_ts"),
        ({"type": "message", "channel": 5, "ts": "1.0"}, "bad_channel"),
        ({"type": "message", "channel": "C1", "ts": "1.0", "text": ["x"]}, "bad_text"),
        ({"type": "message", "channel": "C1", "ts": "1.0", "user": 7}, "bad_user"),
    ],
)
def test_unusable_events_are_rejected(payload: dict, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        normalise(orjson.loads(orjson.dumps(payload)), team_id="T1", enterprise_id=None)
    assert info.value.reason == reason


def _outcome(fn: Any, payload: Any, **kwargs: Any) -> Any:
    try:
        return fn(payload, **kwargs)._values()
    except FrameError as exc:
        return exc.reason


def test_the_fast_path_agrees_with_the_field_by_field_path_on_every_shape() -> None:
    # normalise() builds the common shape in one step and hands everything else to _normalise();
    # both must give the same event, or the same error, for any mix of field shapes.
    # Per field: the plain shape first (picked most of the time, so that most payloads are one
    # field away from the fast path), then the others.
    shapes: dict[str, list[Any]] = {
        "type": ["message", "reaction_added", _MISSING, "", 5],
        "subtype": [_MISSING, None, "message_changed", 3],
        "channel": ["C1", _MISSING, "", {"id": "C2"}, 7],
        "ts": ["1.5", _MISSING, "", 1.5],
        "event_ts": [_MISSING, "2.5", 9],
        "thread_ts": [_MISSING, "0.5", []],
        "user": ["U1", _MISSING, {"id": "U2"}, 4],
        "text": ["hi <@U1>", _MISSING, None],
        "bot_id": [_MISSING, "B1", 2],
        "source_team": ["T2", _MISSING, 1],
        "user_team": ["T2", _MISSING, 1],
        "user_id_mapping_old_to_new": [_MISSING, {"U1": "W1"}, {}, "x"],
    }
    rng = random.Random(20261123)
    names = list(shapes)
    compared = set()
    for _ in range(5_000):
        chosen = {n: shapes[n][0] if rng.random() < 0.8 else rng.choice(shapes[n][1:]) for n in names}
        payload = {n: v for n, v in chosen.items() if v is not _MISSING}
        for kwargs in ({"enterprise_id": "E1", "event_id": None}, {"enterprise_id": None, "event_id": "Ev1"}):
            fast = _outcome(normalise, payload, team_id="T1", **kwargs)
            full = _outcome(_normalise, payload, team_id="T1", **kwargs)
            assert fast == full, payload
            compared.add(fast if isinstance(fast, str) else "event")
    assert {"event", "no_type", "bad_channel", "bad_ts", "bad_user", "bad_text"} <= compared
