"""``[oauth]`` in the config file: read into OAuthConfig, each mistake one line naming its key,
the client secret never echoed."""

from __future__ import annotations

from typing import Any

import pytest

from gridbot.config import ConfigError, connection_key, parse

GOOD: dict[str, Any] = {
    "client_id": "1234.5678",
    "client_secret": "${SLACK_CLIENT_SECRET}",
    "scopes": ["chat:write", "channels:history"],
    "redirect_url": "https://bot.example.com/slack/oauth_redirect",
    "app_token": "${SLACK_APP_TOKEN}",
    "port": 3000,
    "token_rotation": True,
}
ENV = {"SLACK_CLIENT_SECRET": "s3cr3t-client-secret-value", "SLACK_APP_TOKEN": "xapp-1-A1-app"}


def problems(oauth: dict[str, Any], **top: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse({"oauth": oauth, **top}, ENV)
    return info.value.problems


def test_a_good_section_is_read_with_its_defaults() -> None:
    oauth = parse({"oauth": GOOD}, ENV).oauth
    assert oauth is not None
    assert oauth.client_secret.get() == ENV["SLACK_CLIENT_SECRET"]
    assert oauth.redirect_path == "/slack/oauth_redirect"
    assert (oauth.transport, oauth.install_path, oauth.refresh_ahead) == (
        "socket_mode",
        "/slack/install",
        7200.0,
    )
    # an installation is served on the app token's connection, beside [[teams]] sharing it
    served = oauth.team_config(__import__("gridbot.secrets").secrets.Secret("xoxb-installed"), "team:T1")
    assert connection_key(served).startswith("socket_mode:")
    assert parse({}, ENV).oauth is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"client_id": ""}, "oauth.client_id: required (Basic Information in the app's settings)"),
        ({"client_secret": ""}, "oauth.client_secret: required, usually ${SLACK_CLIENT_SECRET}"),
        ({"scopes": []}, 'oauth.scopes: required: the bot scopes to ask for, e.g. ["chat:write"]'),
        ({"scopes": ["chat:write,users:read"]}, "oauth.scopes: expected a list of scope names"),
        ({"redirect_url": "http://bot.example.com/cb"}, "oauth.redirect_url: required: the https URL"),
        (
            {"transport": "rtm"},
            'oauth.transport: expected "socket_mode" or "http" (OAuth apps cannot use RTM)',
        ),
        ({"app_token": "xoxb-not-an-app-token"}, "oauth.app_token: an app-level token (xapp-) is required"),
        ({"transport": "http", "app_token": ""}, 'oauth.signing_secret: required when transport = "http"'),
        ({"port": 70000}, "oauth.port: must be between 0 and 65535"),
        ({"refresh_ahead": 0}, "oauth.refresh_ahead: must be greater than 0"),
        ({"install_path": "install"}, "oauth.install_path: a path starting with /"),
        ({"colour": "blue"}, "oauth.colour: unknown key"),
    ],
)
def test_each_mistake_is_one_line_naming_its_key(change: dict[str, Any], expected: str) -> None:
    found = problems({**GOOD, **change})
    assert len([p for p in found if p.startswith(expected.partition(":")[0] + ":")]) == 1, found
    assert any(p.startswith(expected) for p in found), found


def test_http_installs_need_the_events_listener() -> None:
    found = problems(
        {**GOOD, "transport": "http", "app_token": "", "signing_secret": "${SLACK_CLIENT_SECRET}"}
    )
    assert found == ['events.port: required when oauth.transport = "http"']


def test_scopes_of_the_wrong_type_are_one_line() -> None:
    assert [p for p in problems({**GOOD, "scopes": "chat:write"}) if p.startswith("oauth.scopes")] == [
        "oauth.scopes: expected list, got 'chat:write'"
    ]


def test_the_client_secret_is_never_echoed() -> None:
    found = problems({**GOOD, "client_secret": 12345, "client_id": ""})
    assert "12345" not in "\n".join(found)
    assert "oauth.client_secret: expected str, got a secret" in found
