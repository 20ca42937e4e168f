"""The README is the manual: every log event and metric the code emits is documented there."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def emitted_events() -> set[str]:
    """Event names of every structlog call in gridbot/ and plugins/ (``x.warning("a.b", ...)``)."""
    found: set[str] = set()
    for path in [*ROOT.joinpath("gridbot").rglob("*.py"), *ROOT.joinpath("plugins").rglob("*.py")]:
        if "testing" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in LEVELS and name != "level":
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", first.value):
                    found.add(first.value)
            elif isinstance(first, ast.JoinedStr):  # f"plugin.{which}_failed"
                text = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in first.values)
                found.add(text)
    return found


def test_every_log_event_is_in_the_readme_reference() -> None:
    readme = ROOT.joinpath("README.md").read_text()
    documented = set(re.findall(r"`([a-z_*]+(?:\.[a-z_*]+)+)`", readme))
    missing = set()
    for event in emitted_events():
        if "*" in event:
            pattern = re.compile(re.escape(event).replace(r"\*", "[a-z_]+"))
            if not any(pattern.fullmatch(d) for d in documented):
                missing.add(event)
        elif event not in documented:
            missing.add(event)
    assert not missing, f"log events missing from the README: {sorted(missing)}"


def test_every_metric_is_in_the_readme_reference() -> None:
    code = ROOT.joinpath("gridbot", "metrics.py").read_text()
    metrics = set(re.findall(r'"(gridbot_[a-z_]+)"', code))
    readme = ROOT.joinpath("README.md").read_text()
    missing = {m for m in metrics if m not in readme and f"{m}_total" not in readme}
    assert metrics and not missing, f"metrics missing from the README: {sorted(missing)}"


def _code_blocks(text: str, after: str) -> list[str]:
    section = text[text.index(after):]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _body(source: str) -> list[str]:
    """Code lines without the module docstring and blank lines (formatting may differ)."""
    lines = [ln.rstrip() for ln in source.splitlines() if ln.strip()]
    if lines and lines[0].startswith('"""'):
        lines = lines[1:]
    return [re.sub(r"\s+#.*$", "", ln) for ln in lines]


def test_the_plugin_guide_example_is_the_code_the_suite_runs() -> None:
    """The README's example plugin and its test are what tests/plugins/test_guide_example.py runs."""
    readme = ROOT.joinpath("README.md").read_text()
    plugin_code, test_code = _code_blocks(readme, "### A complete example")[:2]
    fixture = ROOT.joinpath("tests", "fixtures", "sample_plugins", "standup.py").read_text()
    assert _body(plugin_code) == _body(fixture)
    suite = ROOT.joinpath("tests", "plugins", "test_guide_example.py").read_text()
    ran = [ln for ln in _body(suite) if not ln.startswith(("pytestmark", "    plugins=", ")"))]
    shown = [ln for ln in _body(test_code) if not ln.startswith("pytestmark")]
    assert [ln for ln in shown if ln.strip()] == [ln for ln in ran if ln.strip()]


def _marked_block(text: str, mark: str) -> str:
    """The fenced block right below ``<!-- test: MARK -->`` (the README is the only copy)."""
    [body] = re.findall(rf"<!-- test: {re.escape(mark)} -->\n```\w*\n(.*?)```", text, flags=re.S)
    return str(body)


async def test_the_simulator_section_runs_as_written() -> None:
    """The README's ``gridbot simulate`` block serves, and its curl block, run as written against
    it, posts as a user and reads the conversation back (issue 16)."""
    readme = ROOT.joinpath("README.md").read_text()
    serve, talk = _marked_block(readme, "simulator serve"), _marked_block(readme, "simulator curl")
    port = int(re.findall(r"--port (\d+)", serve)[0])
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail(f"port {port} is in use: the README's commands cannot run as written")
    # the `gridbot` command of this environment, running this source tree
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    server = await asyncio.create_subprocess_shell(
        serve, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True
    )
    assert server.stdout is not None
    try:
        async with asyncio.timeout(20):
            while not (line := await server.stdout.readline()).startswith(b"serving"):
                assert line, f"gridbot simulate exited: {(await server.communicate())[1].decode()}"
        client = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", talk, stdout=asyncio.subprocess.PIPE, env=env
        )
        out, _ = await asyncio.wait_for(client.communicate(), 20)
        assert client.returncode == 0
    finally:
        os.killpg(server.pid, signal.SIGINT)
        await asyncio.wait_for(server.wait(), 10)
    decoder, text, answers = json.JSONDecoder(), out.decode(), []
    while text.strip():
        answer, end = decoder.raw_decode(text.strip())
        answers.append(answer)
        text = text.strip()[end:]
    posted, history = answers
    assert posted["ok"] and posted["message"]["text"] == "hello <@W0BOB0001>, from curl"
    [message] = history["messages"]
    assert (message["user"], message["text"]) == ("W0ALICE01", "hello <@U0BOB0001>, from curl")
