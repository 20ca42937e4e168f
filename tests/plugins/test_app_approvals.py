"""app_approvals: requests posted to the admin channel; only org admins decide; every error in words."""

from __future__ import annotations

from typing import Any

import pytest
from gridbot_plugins import app_approvals
from gridbot_plugins.app_approvals import ERRORS, Refusal, explain, parse

from gridbot.testing.pytest_plugin import Grid, GridFactory

ADMIN_CHANNEL = "C0ADMINS1"
SETTINGS = {"app_approvals": {"admin_channel": ADMIN_CHANNEL, "user_token": "xoxp-sim-dave"}}
ADMIN_METHODS = (
    "admin.apps.approve",
    "admin.apps.restrict",
    "admin.apps.clearResolution",
    "admin.apps.uninstall",
)
REQUEST_EVENT: dict[str, Any] = {
    "type": "app_requested",
    "app_request": {
        "id": "Ar0REQ0001",
        "app": {"id": "A0OTHER01", "name": "Polly"},
        "previous_resolution": None,
        "user": {"id": "W0BOB0001", "name": "bob"},
        "team": {"id": "T0TEAM002", "name": "Team Two", "domain": "acme-two"},
        "enterprise": {"id": "E0GRID001", "name": "Acme Corp"},
        "scopes": [
            {"name": "chat:write", "description": "", "is_sensitive": False, "token_type": "bot"},
            {"name": "channels:read", "description": "", "is_sensitive": False, "token_type": "bot"},
        ],
        "message": "for the stand-up polls",
    },
}

pytestmark = pytest.mark.gridbot(plugins=["app_approvals"], settings=SETTINGS)


def admin_calls(grid: Grid) -> list[Any]:
    return [c for m in ADMIN_METHODS for c in grid.calls_to(m)]


async def test_a_request_is_posted_to_the_admin_channel_with_the_answers(grid: Grid) -> None:
    [post] = await grid.send_event(REQUEST_EVENT, team="T0TEAM001")
    assert post.channel == ADMIN_CHANNEL
    assert "*App request* `Ar0REQ0001`: <@W0BOB0001> asks to install *Polly* (`A0OTHER01`)" in post.text
    assert "on Team Two (`T0TEAM002`)" in post.text
    assert "Scopes: `chat:write`, `channels:read`." in post.text
    assert "Their message: for the stand-up polls" in post.text
    assert "`!approve Ar0REQ0001 team T0TEAM002`" in post.text


async def test_an_org_admin_approves_a_request_for_its_team(grid: Grid) -> None:
    await grid.send_event(REQUEST_EVENT, team="T0TEAM001")
    reply = await grid.ask("dave", ADMIN_CHANNEL, "!approve Ar0REQ0001 team T0TEAM002")
    assert reply.text == (
        "Done: approved Polly (request Ar0REQ0001) for team T0TEAM002, as <@W0DAVE001> asked."
    )
    assert grid.sim.admin.resolutions == {("T0TEAM002", "A0OTHER01"): "approved"}
    [call] = grid.calls_to("admin.apps.approve")
    assert call.user_id == "W0DAVE001"  # the configured user token, not a bot token
    assert call.args == {"request_id": "Ar0REQ0001", "team_id": "T0TEAM002"}


async def test_org_wide_restrict_clear_and_uninstall(grid: Grid) -> None:
    reply = await grid.ask("dave", "C0SHARED1", "<@U0BOT0001> restrict A0OTHER01 org")
    assert reply.text.startswith("Done: restricted app A0OTHER01 for the whole org")
    assert grid.sim.admin.resolutions == {("E0GRID001", "A0OTHER01"): "restricted"}
    reply = await grid.ask("dave", "C0SHARED1", "!clear A0OTHER01 org")
    assert reply.text.startswith("Done: cleared the decision about app A0OTHER01 for the whole org")
    assert grid.sim.admin.resolutions == {}
    reply = await grid.ask("dave", "C0SHARED1", "!uninstall A0GRIDBOT1 team T0TEAM002")
    assert reply.text.startswith("Done: uninstalled app A0GRIDBOT1 for team T0TEAM002")
    [call] = grid.calls_to("admin.apps.uninstall")
    assert call.args["team_ids"] in ("T0TEAM002", ["T0TEAM002"])


async def test_admin_rights_are_checked_with_users_info_on_every_request(grid: Grid) -> None:
    for _ in range(3):
        await grid.ask("dave", ADMIN_CHANNEL, "!restrict A0OTHER01 team T0TEAM002")
    checks = [c for c in grid.calls_to("users.info") if c.args["user"] == "W0DAVE001"]
    assert len(checks) == 3  # never answered from the profile cache


@pytest.mark.parametrize(
    "who,channel,text",
    [
        pytest.param("alice", "C0SHARED1", "!approve A0OTHER01 org", id="non-admin-of-team-one"),
        pytest.param("carol", "C0SHARED1", "!approve A0OTHER01 org", id="non-admin-of-another-team"),
        pytest.param("erin", "G0TWOPRIV", "!approve A0OTHER01 team T0TEAM002", id="guest"),
        pytest.param("bob", "C0SHARED1", "!approve A0OTHER01 org <@W0DAVE001>", id="spoofed-id-in-text"),
        pytest.param("bob", "C0SHARED1", "<@W0DAVE001> !approve A0OTHER01 org", id="spoofed-leading-id"),
        pytest.param("bob", "G0TWOPRIV", "!uninstall A0GRIDBOT1 user=W0DAVE001 org", id="spoofed-arg"),
    ],
)
async def test_anyone_but_an_org_admin_is_refused_and_nothing_is_called(
    grid: Grid, who: str, channel: str, text: str
) -> None:
    replies = await grid.say(who, channel, text)
    if text.startswith("<@W0DAVE001>"):  # not addressed to the bot at all: no command, no call
        assert replies == []
    else:
        assert [r.text for r in replies] == ["Sorry, only org admins and owners can decide about apps."]
        assert [c.args["user"] for c in grid.calls_to("users.info")] == [grid.user_id(who)]
    assert admin_calls(grid) == []
    assert grid.sim.admin.resolutions == {}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("!approve Ar0REQ0001", "Where? Say `team T…` for one team or `org` for the whole org."),
        (
            "!approve A0OTHER01 Ar0REQ0001 org",
            "Give either the app id (A…) or the request id (Ar…), not both.",
        ),
        ("!approve A0OTHER01 team T0TEAM002 org", "Exactly one of a team or the whole org, not both."),
        ("!restrict A0OTHER01 team T0TEAM001 T0TEAM002", "`restrict` works on one team at a time"),
        ("!clear Ar0REQ0001 org", "`clear` needs the app id (A…), not a request id."),
        ("!uninstall A0OTHER01", "Where?"),
        ("!approve org", "Which app? Give its app id (A…) or the request id (Ar…)."),
        ("!approve A0OTHER01 team", "Which team? Give its id (T…)."),
        ("!approve A0OTHER01 A0POLLY02 org", "One app or request at a time, please."),
        ("!approve A0OTHER01 please", "I don't understand `please`."),
    ],
)
async def test_the_documented_argument_rules_are_enforced_before_calling(
    grid: Grid, text: str, expected: str
) -> None:
    reply = await grid.ask("dave", ADMIN_CHANNEL, text)
    assert reply.text.startswith(expected)
    assert admin_calls(grid) == []


async def _prepare(grid: Grid, setup: str | None) -> None:
    if setup is not None:
        reply = await grid.ask("dave", ADMIN_CHANNEL, setup)
        assert reply.text.startswith("Done"), reply.text


@pytest.mark.parametrize(
    "setup,text,error",
    [
        (None, "!approve Ar0NOPE001 team T0TEAM002", "invalid_request_id"),
        (None, "!approve A0NOPE0001 team T0TEAM002", "invalid_app_id"),
        (None, "!approve Ar0REQ0001 team T0TEAM009", "team_not_found"),
        (
            "!approve Ar0REQ0001 team T0TEAM002",
            "!restrict Ar0REQ0001 team T0TEAM002",
            "request_already_resolved",
        ),
        ("!restrict A0OTHER01 org", "!approve A0OTHER01 team T0TEAM002", "app_restricted_org_wide"),
        (None, "!clear A0OTHER01 team T0TEAM002", "no_resolution_found"),
        (None, "!clear A0NOPE0001 org", "invalid_app_id"),
        (None, "!uninstall A0NOPE0001 org", "app_not_found"),
        (None, "!uninstall A0GRIDBOT1 E0ELSEWHR1", "enterprise_not_found"),
        (None, "!uninstall A0GRIDBOT1 team T0TEAM001,T0TEAM009", "teams_not_found"),
    ],
)
async def test_each_error_the_simulator_returns_becomes_a_plain_reply(
    grid: Grid, setup: str | None, text: str, error: str
) -> None:
    await _prepare(grid, setup)
    reply = await grid.ask("dave", ADMIN_CHANNEL, text)
    [call] = [c for c in admin_calls(grid) if c.error is not None]
    assert call.error == error
    assert reply.text.startswith("I couldn't ")
    assert ERRORS[error].split("{")[0] in reply.text
    assert f"`{error}`" not in reply.text  # words, not codes


@pytest.mark.parametrize(
    "token,error",
    [
        ("xoxp-sim-erin", "not_an_admin"),
        ("xoxp-sim-nobody", "invalid_auth"),
        ("xoxb-sim-T0TEAM001", "not_allowed_token_type"),
    ],
)
async def test_a_bad_admin_token_is_explained(grid_factory: GridFactory, token: str, error: str) -> None:
    grid = await grid_factory(
        settings={"app_approvals": {"admin_channel": ADMIN_CHANNEL, "user_token": token}}
    )
    reply = await grid.ask("dave", ADMIN_CHANNEL, "!approve A0OTHER01 team T0TEAM002")
    assert [c.error for c in admin_calls(grid)] == [error]
    assert (
        reply.text
        == f"I couldn't approve app A0OTHER01: {explain(error, app='app A0OTHER01', app_id='A0OTHER01', where='team T0TEAM002')}"
    )


async def test_a_revoked_admin_token_is_explained(grid: Grid) -> None:
    await grid.sim.revoke_token("xoxp-sim-dave")
    reply = await grid.ask("dave", ADMIN_CHANNEL, "!approve A0OTHER01 team T0TEAM002")
    assert "the admin token I use was revoked" in reply.text


async def test_the_user_token_is_read_from_the_environment(
    grid_factory: GridFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_ADMIN_TOKEN", "xoxp-sim-dave")
    settings = {
        "app_approvals": {"admin_channel": ADMIN_CHANNEL, "user_token": "${GRIDBOT_TEST_ADMIN_TOKEN}"}
    }
    grid = await grid_factory(settings=settings)
    reply = await grid.ask("dave", ADMIN_CHANNEL, "!approve A0OTHER01 team T0TEAM002")
    assert reply.text.startswith("Done: approved")


async def test_without_a_user_token_nothing_is_called(grid_factory: GridFactory) -> None:
    grid = await grid_factory(settings={"app_approvals": {"admin_channel": ADMIN_CHANNEL}})
    reply = await grid.ask("dave", ADMIN_CHANNEL, "!approve A0OTHER01 team T0TEAM002")
    assert "`[plugins.app_approvals] user_token` is missing" in reply.text
    assert admin_calls(grid) == []


# Every error admin-apps-api.txt documents for approve, restrict, clearResolution and uninstall,
# and the common errors it lists. The simulator returns the ones above; these are the rest.
DOCUMENTED = """
app_management_app_not_installed_on_org app_restricted_org_wide custom_integration_not_allowed_at_enterprise
feature_not_enabled invalid_request_id invalid_app_id org_resolution_required invalid_scopes not_an_admin
request_already_resolved request_id_or_app_id_is_required request_id_required_for_custom_integrations
team_not_found too_many_ids_provided too_many_teams_provided no_resolution_found restricted_action
app_not_found can_not_uninstall enterprise_not_found must_revoke_access permission_denied
specify_enterprise_or_teams teams_not_found too_many_teams access_denied account_inactive
deprecated_endpoint ekm_access_denied enterprise_is_restricted invalid_auth is_bot method_deprecated
missing_scope not_allowed_token_type not_authed no_permission org_login_required token_expired
token_revoked two_factor_setup_required accesslimited fatal_error internal_error invalid_arg_name
invalid_arguments invalid_array_arg invalid_charset invalid_form_data invalid_post_type
missing_post_type ratelimited request_timeout service_unavailable team_added_to_org
""".split()


@pytest.mark.parametrize("error", DOCUMENTED)
def test_every_documented_error_has_its_own_plain_sentence(error: str) -> None:
    text = explain(error, app="Polly", app_id="A0OTHER01", where="team T0TEAM002")
    assert "which I don't know how to explain" not in text
    assert error not in text
    assert "{" not in text


def test_an_undocumented_error_is_still_answered() -> None:
    text = explain("new_error_2031", app="Polly", app_id="A0OTHER01", where="the whole org")
    assert (
        text == "Slack refused with `new_error_2031`, which I don't know how to explain. Nothing was changed."
    )


def test_parse_builds_the_arguments_slack_documents() -> None:
    assert parse("approve", ["Ar0REQ0001", "team", "T0TEAM002"], "E0GRID001").args == {
        "request_id": "Ar0REQ0001",
        "team_id": "T0TEAM002",
    }
    assert parse("restrict", ["A0OTHER01", "org"], "E0GRID001").args == {
        "app_id": "A0OTHER01",
        "enterprise_id": "E0GRID001",
    }
    assert parse("uninstall", ["A0OTHER01", "teams", "T0TEAM001,T0TEAM002"], "E0GRID001").args == {
        "app_id": "A0OTHER01",
        "team_ids": ["T0TEAM001", "T0TEAM002"],
    }
    with pytest.raises(Refusal, match="isn't part of an Enterprise Grid org"):
        parse("approve", ["A0OTHER01", "org"], None)
    with pytest.raises(Refusal, match="At most 100 teams"):
        parse("uninstall", ["A0OTHER01", *(f"T{n:08d}" for n in range(101))], "E0GRID001")


def test_module_documents_its_config() -> None:
    assert "user_token" in (app_approvals.__doc__ or "")
