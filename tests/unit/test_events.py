from __future__ import annotations

import orjson
import pytest

from gridbot.events import FrameError, normalise, parse_frame


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
