"""``gridbot check-config`` loads the plugins it names, and a strict start-up reports every broken
plugin in one line each (issue 16: the operator's first hour).

Before: check-config said ok for plugins that could not load; ``plugins.strict = true`` printed a
60-line chained traceback and stopped at the first bad plugin; an import failure gave no file or
line. Each case runs the real command in a fresh project directory, as an operator would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops.projects import Project, fresh_project

from gridbot.testing import GridSimulator
from gridbot.testing.harness import config_for, to_toml

SYNTAX = 'from gridbot import Plugin\n\nplugin = Plugin("syntax"\n'
IMPORTS = 'from gridbot import Plugin\nimport gridbot_missing_dependency\n\nplugin = Plugin("imports")\n'
SETTINGS = 'from gridbot import Plugin\n\nplugin = Plugin("settings", settings={"channel": str})\n'
FINE = 'from gridbot import Plugin\n\nplugin = Plugin("fine")\n'


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = fresh_project(tmp_path)
    for name, source in (("syntax", SYNTAX), ("imports", IMPORTS), ("settings", SETTINGS), ("fine", FINE)):
        project.write(f"{name}.py", source)
    return project


def test_every_problem_is_one_line_plugins_included_with_file_and_line(project: Project) -> None:
    project.write(
        "gridbot.toml",
        '[plugins]\nenabled = ["echo", "syntax", "imports", "fine", "settings", "gone"]\n\n'
        '[[teams]]\ntransport = "rtm"\nbot_token = "${SLACK_BOT_TOKEN}"\n\n'
        '[[teams]]\ntransport = "rtm"\nbot_token = "${SLACK_BOT_TOKEN}"\n\n'
        '[[teams]]\ntransport = "rtm"\nbot_token = "xoxp-a-user-token"\n',
    )
    done = project.run("gridbot", "check-config", "gridbot.toml")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "gridbot.toml: invalid",
        "  teams[0].bot_token: environment variable SLACK_BOT_TOKEN is not set (also used by teams[1].bot_token)",
        "  teams[2].bot_token: expected a bot token starting with 'xoxb-', got a user token (xoxp-)",
        "  plugins.enabled[1]: plugin syntax: import failed at syntax.py:3: SyntaxError: '(' was never closed",
        "  plugins.enabled[2]: plugin imports: import failed at imports.py:2: ModuleNotFoundError: "
        "No module named 'gridbot_missing_dependency'",
        "  plugins.settings.channel: required by plugin settings (str)",
        "  plugins.enabled[5]: plugin gone: not found (not bundled, no installed entry point in group "
        "'gridbot.plugins', and no module 'gone' on sys.path)",
    ]
    assert "a-user-token" not in done.stderr and "Traceback" not in done.stderr


def test_a_valid_file_names_the_plugins_it_loaded_and_warns_of_settings_nobody_reads(
    project: Project,
) -> None:
    project.write(
        "gridbot.toml",
        '[plugins]\nenabled = ["help", "fine", "settings"]\n\n[plugins.settings]\nchannel = "C1"\n\n'
        '[plugins.fien]\nmood = "typo"\n',
    )
    done = project.run("gridbot", "check-config", "gridbot.toml")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "gridbot.toml: ok (0 teams: none; store: in-memory (one process only); plugins: help, fine, settings)\n"
    )
    assert (
        done.stderr
        == "warning: plugins.fien: no enabled plugin is named 'fien'; these settings are not used\n"
    )


def test_traceback_on_request(project: Project) -> None:
    project.write("gridbot.toml", '[plugins]\nenabled = ["imports", "gone"]\n')
    done = project.run("gridbot", "check-config", "--traceback", "gridbot.toml")
    assert done.returncode == 2
    assert done.stderr.count("Traceback (most recent call last)") == 1  # "gone" has none worth showing
    assert 'imports.py", line 2, in <module>' in done.stderr


async def test_a_strict_start_up_logs_every_broken_plugin_once_and_exits_2_without_a_traceback(
    project: Project,
) -> None:
    async with GridSimulator(seed=9) as sim:  # never reached: start-up stops first
        config = config_for(sim, {"T0TEAM001": "rtm"}, plugins=("echo", "syntax", "fine", "imports"))
    text = to_toml(config).replace("strict = false", "strict = true")
    project.write("gridbot.toml", text).chmod(0o600)
    done = project.run("gridbot", "--log-json", "run", "--config", "gridbot.toml")
    assert done.returncode == 2
    logged = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(e["event"], e["plugin"]) for e in logged] == [
        ("plugin.load_failed", "syntax"),
        ("plugin.load_failed", "imports"),
    ]
    assert logged[1]["error"] == (
        "plugin imports: import failed at imports.py:2: ModuleNotFoundError: No module named "
        "'gridbot_missing_dependency'"
    )
    assert done.stderr == (
        "gridbot.toml: not started: 2 plugins failed to load and plugins.strict = true "
        "(each is logged as plugin.load_failed)\n"
    )
    assert "Traceback" not in done.stdout + done.stderr

    traced = project.run("gridbot", "--log-json", "run", "--config", "gridbot.toml", "--traceback")
    assert traced.returncode == 2 and traced.stderr.count("Traceback (most recent call last)") == 2
    debug = project.run("gridbot", "--log-json", "--log-level", "debug", "run", "--config", "gridbot.toml")
    debug_lines = [json.loads(line) for line in debug.stdout.splitlines()]
    assert len(debug_lines) == 2 and all("Traceback" in e["exception"] for e in debug_lines)


def test_a_plugin_error_quoting_a_token_is_masked(project: Project) -> None:
    token = "-".join(["xoxb", "123456789012", "abcdefghijklmnop"])
    project.write("leaky.py", f'def setup():\n    raise ValueError("cannot use {token}")\n')
    project.write("gridbot.toml", '[plugins]\nenabled = ["leaky"]\n')
    done = project.run("gridbot", "check-config", "--traceback", "gridbot.toml")
    assert done.returncode == 2 and "setup() failed at leaky.py:2: ValueError: cannot use xoxb-[redacted]" in done.stderr
    assert token not in done.stderr
