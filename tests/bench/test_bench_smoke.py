"""The benchmark harness still runs end to end (tiny input; figures are not checked here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_a_table_for_a_tiny_throughput_run(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "throughput", "--quick", "--messages", "300", "--modes", "redis"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GRIDBOT_BENCH_REDIS": redis_url},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[1].split()[:3] == ["bench", "figure", "median"]
    figures = [line for line in lines[3:] if line.startswith("throughput")]
    # parse, Redis, ratio: a run that lost or doubled a message prints no figure and exits 1
    assert [f.split("  ")[1].strip() for f in figures][:2] == ["parse only (ceiling)", "gridbot, Redis store"]
    assert len(figures) == 3
