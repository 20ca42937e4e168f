"""The README is the manual: every log event and metric the code emits is documented there, and
every code block a reader would copy runs in the suite as written, read from README.md itself.

The plugin guide's files run in a fresh project in tests/plugins/test_guide_example.py.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import socket
import sys
import tomllib
from pathlib import Path

import pytest
from ops.projects import Project, fresh_project
from ops.readme import KINDS, Block, blocks, marked

from gridbot.loading import ENTRY_POINT_GROUP

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
    code += ROOT.joinpath("gridbot", "transport", "http_metrics.py").read_text()  # the Events API's
    metrics = set(re.findall(r'"(gridbot_[a-z_]+)"', code))
    readme = ROOT.joinpath("README.md").read_text()
    missing = {m for m in metrics if m not in readme and f"{m}_total" not in readme}
    assert metrics and not missing, f"metrics missing from the README: {sorted(missing)}"


def test_every_block_in_a_language_is_run_by_the_suite_or_says_why_not() -> None:
    """A block without a language (a diagram, a tree) is not code; every other one carries a
    ``<!-- test: ... -->`` or ``<!-- not tested: reason -->`` comment right above it."""
    unmarked = [b.where for b in blocks() if b.lang not in ("", "text") and not b.mark]
    unknown = [f"{b.where}: {b.mark}" for b in blocks() if b.mark.startswith("test:") and b.kind not in KINDS]
    unreasoned = [b.where for b in blocks() if b.mark.startswith("not tested") and len(b.mark) < 20]
    assert not unmarked, f"README blocks neither run nor excused: {unmarked}"
    assert not unknown and not unreasoned, unknown + unreasoned
    assert {b.kind for b in blocks()} >= set(KINDS) | {""}


def placeholders(text: str) -> dict[str, str]:
    """A value of the right kind for each ${VAR} a block names (tokens by their names)."""
    values = {}
    for name in set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)):
        if name.endswith("APP_TOKEN"):
            values[name] = "xapp-1-placeholder"
        elif "BOT_TOKEN" in name:
            values[name] = f"xoxb-placeholder-{name.lower()}"
        elif name.endswith("TOKEN"):
            values[name] = "xoxp-placeholder"
        elif name.endswith("REDIS_URL"):
            values[name] = "redis://127.0.0.1:6379/0"
        else:
            values[name] = "placeholder"
    return values


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return fresh_project(tmp_path)


def test_the_quick_start_runs_in_a_fresh_shell(project: Project) -> None:
    """Issue 16: the quick start's own ``check-config config/gridbot.example.toml`` failed in a
    fresh shell (the example's ${VARS} were not set); the block now sets them."""
    [block] = marked("shell")
    done = project.run("bash", "-euo", "pipefail", "-c", block.text, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config/gridbot.example.toml: ok (2 teams: rtm, socket_mode; store: redis;")
    assert done.stderr == ""


@pytest.mark.parametrize("block", marked("config"), ids=lambda b: f"line{b.line}")
def test_every_config_block_passes_check_config(project: Project, block: Block) -> None:
    project.write("block.toml", block.text).chmod(0o600)
    done = Project(project.path, {**project.env, **placeholders(block.text)}).run(
        "gridbot", "check-config", "block.toml"
    )
    assert done.returncode == 0, f"{block.where}: {done.stderr}"


def test_the_pyproject_fragment_declares_the_entry_point_group_gridbot_reads() -> None:
    [block] = marked("pyproject")
    declared = tomllib.loads(block.text)["project"]["entry-points"]
    assert list(declared) == [ENTRY_POINT_GROUP]
    [(name, target)] = declared[ENTRY_POINT_GROUP].items()
    assert name == "standup" and re.fullmatch(r"[\w.]+:\w+", target), (name, target)  # as the text enables it


RUN_WITH_AWAIT = """
import ast, asyncio, sys
code = compile(sys.stdin.read(), "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
async def main():
    result = eval(code, {})
    if result is not None:
        await result
asyncio.run(main())
"""


def test_the_python_snippets_run_as_written_against_redis(project: Project, redis_available: None) -> None:
    snippets = marked("python with redis")
    assert snippets
    for block in snippets:
        done = project.run(sys.executable, "-c", RUN_WITH_AWAIT, stdin=block.text)
        assert done.returncode == 0, f"{block.where}: {done.stderr}"


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
