"""Interactions over the Events API: the HTTP answer is the ack, as Slack expects it
(platform-2026.md, "Interactivity": the ack within 3 s carries the answer). Signed and posted by
the simulator's HTTP delivery (``sim.http.deliver``; Slack does not retry interactions)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from gridtest import T1, log_lines
from httpkit import APP, http_config, http_runtime, subscribe

from gridbot.interactive.ack import ACK_DEADLINE
from gridbot.testing import GridSimulator
from gridbot.testing.simulator import form_body
from gridbot.transport.http_apps import FORM


async def send_form(sim: GridSimulator, fields: dict[str, str]) -> tuple[int | None, bytes]:
    delivery = await sim.http.deliver(APP, form_body(fields), content_type=FORM, retries=False)
    return delivery.attempts[0].status, delivery.answer or b""


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator() as simulator:
        yield simulator


def submission(text: str) -> dict[str, str]:
    view = {"id": "V1", "callback_id": "ticket_modal", "team_id": T1, "app_installed_team_id": T1,
            "private_metadata": "C0ONE0001", "state": {"values": {"title": {"input": {"value": text}}}}}  # fmt: skip
    payload = {"type": "view_submission", "team": {"id": T1}, "user": {"id": "W0ALICE01", "team_id": T1},
               "trigger_id": f"9.9.{text or 'empty'}", "view": view}  # fmt: skip
    return {"payload": json.dumps(payload)}


async def test_a_view_submissions_errors_are_the_http_answer(sim: GridSimulator) -> None:
    config = http_config(sim, plugins=("interactive.kit",))
    async with http_runtime(config) as (_, url):
        await subscribe(sim, url)
        status, body = await send_form(sim, submission(""))
        assert (status, orjson.loads(body)) == (
            200,
            {"response_action": "errors", "errors": {"title": "A title, please"}},
        )
        status, body = await send_form(sim, submission("more"))
        pushed = orjson.loads(body)
        assert (status, pushed["response_action"], pushed["view"]["callback_id"]) == (
            200,
            "push",
            "details_modal",
        )


async def test_a_late_handler_is_answered_an_empty_200_at_the_deadline(sim: GridSimulator) -> None:
    click = {"type": "block_actions", "team": {"id": T1}, "user": {"id": "W0ALICE01", "team_id": T1},
             "channel": {"id": "C0ONE0001"}, "trigger_id": "7.7.7", "response_url": "http://127.0.0.1:9/none",
             "container": {"type": "message", "channel_id": "C0ONE0001", "message_ts": "1.2"},
             "actions": [{"action_id": "slow", "value": "s"}]}  # fmt: skip
    config = http_config(sim, plugins=("interactive.kit",))
    async with http_runtime(config) as (_, url):
        await subscribe(sim, url)
        with log_lines("info") as logs:
            started = time.monotonic()
            assert await send_form(sim, {"payload": json.dumps(click)}) == (200, b"")
            took = time.monotonic() - started
    assert ACK_DEADLINE - 0.05 <= took < 3.0
    assert '"interactive.ack_late"' in logs.getvalue()
