from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gridbot.cli import main
from gridbot.config import ConfigError, TeamConfig, connection_key, load, parse
from gridbot.secrets import Secret

EXAMPLE = Path(__file__).parents[2] / "config" / "gridbot.example.toml"


def problems(raw: dict, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(raw, env or {})
    return info.value.problems


def test_example_config_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "SLACK_BOT_TOKEN_T1": "xoxb-example-1",
        "SLACK_BOT_TOKEN_T2": "xoxb-example-2",
        "SLACK_APP_TOKEN": "xapp-example",
    }
    for k, v in env.items():
        os.environ.setdefault(k, v)
    target = tmp_path / "c.toml"
    shutil.copy(EXAMPLE, target)
    target.chmod(0o600)
    assert main(["check-config", str(target)]) == 0
    assert ": ok (" in capsys.readouterr().out


def test_env_interpolation_and_defaults() -> None:
    config = parse({"teams": [{"transport": "rtm", "bot_token": "${TOK}"}]}, {"TOK": "xoxb-from-env"})
    assert config.teams[0].bot_token.get() == "xoxb-from-env"
    assert config.redis.url is None
    assert config.plugins.enabled == ("echo",)
    assert config.slack.api_url == "https://slack.com/api/"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {
                "teams": [
                    {"transport": "rtm", "bot_token": "xoxb-a"},
                    {"transport": "socket_mode", "bot_token": "xoxb-b"},
                ]
            },
            'teams[1].app_token: required when transport = "socket_mode"',
        ),
        (
            {"teams": [{"transport": "carrier-pigeon", "bot_token": "xoxb-a"}]},
            'teams[0].transport: expected "rtm", "socket_mode" or "http"',
        ),
        ({"teams": [{"transport": "rtm"}]}, "teams[0].bot_token: required"),
        (
            {"teams": [{"transport": "rtm", "bot_token": "hunter2-secret"}]},
            "teams[0].bot_token: expected a bot token starting with 'xoxb-', got something else",
        ),
        (
            {"teams": [{"transport": "rtm", "bot_token": "xoxp-a-user-token"}]},
            "teams[0].bot_token: expected a bot token starting with 'xoxb-', got a user token (xoxp-)",
        ),
        (
            {"teams": [{"transport": "socket_mode", "bot_token": "xoxb-a", "app_token": "xoxb-b"}]},
            "teams[0].app_token: expected an app-level token starting with 'xapp-', got a bot token (xoxb-)",
        ),
        ({"logging": {"handled_events": "no"}}, "logging.handled_events: expected bool"),
        ({"logging": {"handled": False}}, "logging.handled: unknown key"),
        (
            {
                "teams": [
                    {
                        "transport": "socket_mode",
                        "bot_token": "xoxb-a",
                        "app_token": "xapp-a",
                        "connections": 11,
                    }
                ]
            },
            "teams[0].connections: must be between 1 and 10",
        ),
        (
            {"teams": [{"transport": "rtm", "bot_token": "${MISSING}"}]},
            "teams[0].bot_token: environment variable MISSING is not set",
        ),
        (
            {"teams": [{"transport": "rtm", "bot_token": "xoxb-a", "colour": "red"}]},
            "teams[0].colour: unknown key",
        ),
        ({"slack": {"api_url": "ftp://x"}}, "slack.api_url: expected an http(s) URL"),
        ({"redis": {"url": "mysql://x"}}, "redis.url: expected a URL starting with one of"),
        ({"runtime": {"claim_ttl": 60}}, "runtime.claim_ttl: must be at least 900 seconds"),
        ({"runtime": {"handler_timeout": -1}}, "runtime.handler_timeout: must be greater than 0"),
        ({"plugins": {"enabled": "echo"}}, "plugins.enabled: expected list"),
        ({"http": {"port": 70000}}, "http.port: must be between 0 and 65535"),
        ({"teams": {"transport": "rtm"}}, "teams: expected an array of tables"),
    ],
)
def test_each_mistake_is_named_by_its_key_path(raw: dict, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(raw)), problems(raw)


def test_errors_never_echo_secrets() -> None:
    found = problems(
        {
            "teams": [{"transport": "rtm", "bot_token": 12345}],
            "redis": {"url": 42},
            "slack": {"api_url": "-".join(["xoxb", "123", "456", "abcdefghijkl"])},
        }
    )
    text = "\n".join(found)
    assert "12345" not in text and "42" not in text and "abcdefghijkl" not in text


def test_check_config_rejects_with_key_path_and_nonzero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[teams]]\ntransport = "socket_mode"\nbot_token = "xoxb-sekrit-value"\n')
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert 'teams[0].app_token: required when transport = "socket_mode"' in err
    assert "sekrit" not in err


def test_run_reports_a_bad_config_as_check_config_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[teams]]\ntransport = "rtm"\n[runtime]\nlease_ttl = -1\n')
    assert main(["check-config", str(bad)]) == 2
    checked = capsys.readouterr().err
    assert main(["run", "--config", str(bad)]) == 2
    assert capsys.readouterr().err == checked
    assert checked.splitlines() == [
        f"{bad}: invalid",
        "  runtime.lease_ttl: must be greater than 0",
        "  teams[0].bot_token: required",
    ]


def test_unparseable_and_missing_files_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[slack\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "nope.toml")


def test_world_readable_config_warns_only_about_literal_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[teams]]\ntransport = "rtm"\nbot_token = "xoxb-abc"\n')
    path.chmod(0o644)
    warnings = load(path).warnings
    assert any("readable by other users" in w and "teams[0].bot_token" in w for w in warnings)
    assert not any("xoxb-abc" in w for w in warnings)
    path.chmod(0o600)
    assert load(path).warnings == ()
    # A container's config mounted world-readable, every secret from the environment: no warning.
    path.write_text(
        '[redis]\nurl = "redis://:${REDIS_PW}@r:6379/0"\n[[teams]]\ntransport = "rtm"\n'
        'bot_token = "${TOKEN}"\n'
    )
    path.chmod(0o644)
    assert load(path, {"TOKEN": "xoxb-x", "REDIS_PW": "pw"}).warnings == ()
    path.write_text('[redis]\nurl = "redis://:hunter2@r:6379/0"\n')
    assert any("redis.url" in w for w in load(path, {}).warnings)


def test_connection_keys_keep_their_format() -> None:
    """Connection keys are parts of Redis keys and ownership lease names: a process of the next
    version must compute the same key as the running ones, or a rolling upgrade serves a team twice."""
    bot, app = Secret("xoxb-1-key-format"), Secret("xapp-1-A1-1-key-format")
    assert connection_key(TeamConfig("rtm", bot)) == "rtm:a5009113fb96"
    assert connection_key(TeamConfig("socket_mode", bot, app)) == "socket_mode:4aca694902a6"
    other_team = TeamConfig("socket_mode", Secret("xoxb-2-other"), app)
    assert connection_key(other_team) == connection_key(TeamConfig("socket_mode", bot, app))


def test_a_missing_variable_is_reported_once_naming_every_key_that_uses_it() -> None:
    """Issue 16: check-config reported a missing variable twice ("not set", then "required")."""
    found = problems(
        {
            "teams": [
                {"transport": "rtm", "bot_token": "${SLACK_BOT_TOKEN}"},
                {"transport": "socket_mode", "bot_token": "${SLACK_BOT_TOKEN}", "app_token": "${APP}"},
            ],
            "plugins": {"app_approvals": {"user_token": "${APP}"}},
        }
    )
    assert found == [
        "teams[0].bot_token: environment variable SLACK_BOT_TOKEN is not set (also used by teams[1].bot_token)",
        "teams[1].app_token: environment variable APP is not set (also used by plugins.app_approvals.user_token)",
    ]


def test_the_handled_events_line_is_on_unless_switched_off() -> None:
    assert parse({}, {}).logging.handled_events is True
    assert parse({"logging": {"handled_events": False}}, {}).logging.handled_events is False
