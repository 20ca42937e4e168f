"""Discovery and loading: bundled names, dotted paths, installed entry points, signature checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from gridtest import log_lines
from structlog.testing import capture_logs

from gridbot import Context, Plugin, PluginError
from gridbot.loading import ENTRY_POINT_GROUP, PluginsFailed, load_all, load_plugin, load_plugins
from gridbot.secrets import Secret
from gridbot.testing.pytest_plugin import GridFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


# -- signatures are checked when the plugin loads -------------------------------------------------


def test_a_named_group_the_handler_does_not_take_is_fine_and_a_missing_one_is_not() -> None:
    p = Plugin("demo")

    @p.message(r"^add (?P<a>\d+) (?P<b>\d+)$")
    async def add(ctx: Context, a: str) -> None: ...

    with pytest.raises(PluginError) as exc:

        @p.message(r"^hi (?P<name>\w+)$")
        async def hi(ctx: Context, nmae: str) -> None: ...

    assert str(exc.value) == "plugin demo, handler hi: parameter 'nmae' is never passed (available: name)"

    with pytest.raises(PluginError, match="parameter 'nmae' is never passed"):  # a default hides nothing

        @p.message(r"^hi (?P<name>\w+)$")
        async def hi_maybe(ctx: Context, nmae: str = "") -> None: ...


@pytest.mark.parametrize(
    "decorate,handler,problem",
    [
        ("command", "def sync(ctx): ...", "must be an async def"),
        ("command", "async def no_ctx(): ...", "the first parameter must be the context (ctx)"),
        ("command", "async def star(ctx, *rest): ...", "*rest is not supported"),
        (
            "command",
            "async def extra(ctx, channel): ...",
            "parameter 'channel' is never passed (available: args, text)",
        ),
        (
            "event",
            "async def extra(ctx, user): ...",
            "parameter 'user' is never passed (available: nothing besides ctx)",
        ),
    ],
)
def test_signature_mistakes_name_the_plugin_handler_and_problem(
    decorate: str, handler: str, problem: str
) -> None:
    namespace: dict[str, Any] = {}
    exec(handler, namespace)
    fn = next(v for k, v in namespace.items() if k != "__builtins__")
    p = Plugin("demo")
    decorator = p.command("go") if decorate == "command" else p.event("reaction_added")
    with pytest.raises(PluginError) as exc:
        decorator(fn)
    assert str(exc.value) == f"plugin demo, handler {fn.__name__}: {problem}"


@pytest.mark.parametrize(
    "make,problem",
    [
        (lambda p: p.message("(unclosed"), "plugin demo: bad pattern '(unclosed'"),
        (lambda p: p.command("two words"), "plugin demo: bad command name 'two words'"),
        (lambda p: p.schedule(), "plugin demo: schedule() takes exactly one of every= or cron="),
        (lambda p: p.schedule(every=5, cron="* * * * *"), "exactly one of every= or cron="),
        (lambda p: p.schedule(every=0), "schedule(every=...) must be positive"),
        (lambda p: p.schedule(cron="61 * * * *"), "schedule(cron='61 * * * *'): minute: 61 is outside 0-59"),
        (lambda p: p.schedule(cron="0 0 30 2 *"), "'0 0 30 2 *' never fires"),
        (lambda p: p.message("x", flags=128), "unsupported regex flags 0x80"),  # re.DEBUG
    ],
)
def test_decorator_arguments_are_checked(make: Any, problem: str) -> None:
    with pytest.raises(
        PluginError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ):
        make(Plugin("demo"))


def test_a_command_declared_twice_in_one_plugin_fails_the_load() -> None:
    p = Plugin("demo")

    @p.command("go")
    async def one(ctx: Context) -> None: ...

    with pytest.raises(PluginError, match="command 'go' is declared twice"):

        @p.command("GO")
        async def two(ctx: Context) -> None: ...


# -- discovery ------------------------------------------------------------------------------------


def test_bundled_names_and_dotted_paths_load() -> None:
    assert load_plugin("whois").name == "whois"
    assert load_plugin("gridbot_plugins.echo").name == "echo"
    assert load_plugin("fixtures.sample_plugins.healthy:plugin").name == "healthy"


def test_two_plugins_with_one_name_keep_the_first() -> None:
    with capture_logs() as logs:
        loaded = load_all(("echo", "gridbot_plugins.echo"), strict=False)
    assert [p.name for p in loaded] == ["echo"]
    [failure] = [e for e in logs if e["event"] == "plugin.load_failed"]
    assert failure["error"] == "plugin gridbot_plugins.echo: another enabled plugin is already named 'echo'"


@pytest.fixture
def installed_hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example third-party plugin, pip-installed into a directory put on sys.path."""
    source = tmp_path / "src"
    shutil.copytree(FIXTURES / "gridbot_hello_project", source)  # build artefacts stay out of the repo
    target = tmp_path / "site"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        env=env,
        timeout=120,
        capture_output=True,
    )
    monkeypatch.syspath_prepend(str(target))
    try:
        yield target
    finally:
        sys.modules.pop("gridbot_hello", None)


def test_an_installed_package_is_discovered_through_its_entry_point(installed_hello: Path) -> None:
    [ep] = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "hello"]
    assert ep.value == "gridbot_hello:plugin"
    assert ep.dist is not None and ep.dist.name == "gridbot-hello"
    [plugin] = load_all(("hello",), strict=True)
    assert plugin.name == "hello"
    assert Path(sys.modules["gridbot_hello"].__file__ or "").is_relative_to(installed_hello)


async def test_the_installed_plugin_answers_through_the_runtime(
    installed_hello: Path, grid_factory: GridFactory
) -> None:
    grid = await grid_factory(plugins=["hello"])
    reply = await grid.ask("bob", "C0SHARED1", "hello there")
    assert reply.text == "Hello Bob Brown of Team Two!"


# -- a local module, and what a failure says (issue 16: the first hour) ---------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A plugin author's directory on sys.path, as pytest and ``gridbot run`` put it there."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        for name in set(sys.modules) - before:
            if name.startswith(("standup", "local_")):
                del sys.modules[name]


def write(project: Path, name: str, source: str) -> None:
    (project / f"{name}.py").write_text(source)


PLUGIN = 'from gridbot import Plugin\n\nplugin = Plugin("{name}"{extra})\n'


def test_a_bare_name_loads_a_module_of_that_name_from_sys_path(project: Path) -> None:
    write(project, "standup", PLUGIN.format(name="standup", extra=""))
    assert load_plugin("standup").name == "standup"


def test_a_bundled_name_is_not_shadowed_by_a_local_module(project: Path) -> None:
    write(project, "local_echo", PLUGIN.format(name="not_echo", extra=""))
    (project / "echo.py").write_text(PLUGIN.format(name="impostor", extra=""))
    assert load_plugin("echo").name == "echo"


@pytest.mark.parametrize(
    "source,expected",
    [
        (
            "import os\n\nx = undefined_name\n",
            "import failed at local_broken.py:3: NameError: name 'undefined_name'",
        ),
        ("import os\n\ndef f(:\n", "import failed at local_broken.py:3: SyntaxError: invalid syntax"),
        (
            "import os\nimport gridbot_missing_dependency\n",
            "import failed at local_broken.py:2: ModuleNotFoundError: No module named 'gridbot_missing_dependency'",
        ),
        ("def setup():\n    return {}['key']\n", "setup() failed at local_broken.py:2: KeyError: 'key'"),
    ],
)
def test_a_plugin_that_fails_names_the_file_and_line(project: Path, source: str, expected: str) -> None:
    write(project, "local_broken", source)
    with pytest.raises(PluginError) as failed:
        load_plugin("local_broken")
    assert str(failed.value).startswith(f"plugin local_broken: {expected}"), str(failed.value)


def test_a_plugin_that_is_nowhere_is_not_found_rather_than_failing_to_import(project: Path) -> None:
    for name, missing in (
        ("local_nowhere", "no module 'local_nowhere'"),
        ("local_pkg.mod", "no module named 'local_pkg'"),
    ):
        with pytest.raises(PluginError) as failed:
            load_plugin(name)
        assert str(failed.value) == (
            f"plugin {name}: not found (not bundled, no installed entry point in group "
            f"'gridbot.plugins', and {missing} on sys.path)"
        )


def test_declared_settings_are_checked_when_the_plugin_loads(project: Path) -> None:
    write(
        project,
        "local_needs",
        PLUGIN.format(name="needs", extra=', settings={"channel": str, "every": float}'),
    )
    ok = {"needs": {"channel": "C0SHARED1", "every": 5}}  # an int is a fine float
    assert [p.name for p in load_plugins(("local_needs",), ok)[0]] == ["needs"]
    secret = {"needs": {"channel": Secret("a-secret-channel-name"), "every": 1.5}}  # as *_token values are
    assert load_plugins(("local_needs",), secret)[1] == []
    loaded, [failure] = load_plugins(("echo", "local_needs"), {"needs": {"every": "often"}})
    assert [p.name for p in loaded] == ["echo"]
    assert failure.line == (
        "plugins.needs.channel: required by plugin needs (str); plugins.needs.every: expected float, got str"
    )
    assert "often" not in failure.line


def test_every_broken_plugin_is_reported_in_order_not_only_the_first(project: Path) -> None:
    write(project, "local_a", "x = 1 / 0\n")
    names = ("local_a", "echo", "local_gone", "fixtures.sample_plugins.bad_signature")
    loaded, failures = load_plugins(names)
    assert [p.name for p in loaded] == ["echo"]
    assert [f.line.partition(":")[0] for f in failures] == [
        "plugins.enabled[0]",
        "plugins.enabled[2]",
        "plugins.enabled[3]",
    ]
    with pytest.raises(PluginsFailed) as failed:
        load_all(names, strict=True)
    assert [f.name for f in failed.value.failures] == [names[0], names[2], names[3]]


@pytest.mark.parametrize("level,traced", [("info", False), ("debug", True)])
def test_each_failure_is_one_log_line_with_its_traceback_only_at_debug(
    project: Path, level: str, traced: bool
) -> None:
    write(project, "local_a", "import os\n\nx = 1 / 0\n")
    with log_lines(level) as stream:
        load_all(("local_a", "local_gone", "echo"), strict=False)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [e for e in lines if e["event"] == "plugin.load_failed"]
    assert [e["plugin"] for e in failed] == ["local_a", "local_gone"]
    assert (
        failed[0]["error"]
        == "plugin local_a: import failed at local_a.py:3: ZeroDivisionError: division by zero"
    )
    assert ("exception" in failed[0]) is traced
    if traced:
        assert 'local_a.py", line 3' in failed[0]["exception"]
    assert "exception" not in failed[1]  # "not found" has no traceback worth showing
