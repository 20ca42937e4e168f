"""The http bench's harness runs end to end on gridbot's side (tiny input; figures not checked).
Its slack_bolt side needs the bench extra (`pip install -e '.[bench]'`)."""

from __future__ import annotations

import pytest

from bench import harness
from bench.http_bench import one_run


async def test_the_http_bench_measures_gridbot(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.http_bench.REDIS_URL", redis_url)
    async with harness.FrameServer(1, {}) as server:
        result = await one_run(server, "gridbot", 300, 300)
    assert result["ok"] == 300 and result["cpu_us"] > 0 and result["p99_ms"] < 1000
