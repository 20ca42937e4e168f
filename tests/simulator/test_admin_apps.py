"""admin.apps.*: the documented argument rules, errors and resolution state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from simulator.sim_helpers import BOT1, BOT2, T1, T2, WsClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.testing import GridSimulator

Web = Callable[[str], AsyncWebClient]
ADMIN, GUEST = "xoxp-sim-dave", "xoxp-sim-erin"
ORG, OTHER_APP, REQUEST = "E0GRID001", "A0OTHER01", "Ar0REQ0001"


def clear(client: AsyncWebClient, **args: str) -> Awaitable[Any]:
    return client.admin_apps_clearResolution(**args)


async def error_of(call: Awaitable[Any]) -> str:
    with pytest.raises(SlackApiError) as e:
        await call
    return str(e.value.response["error"])


async def test_requests_list_shows_pending_requests(web: Web) -> None:
    resp = await web(ADMIN).admin_apps_requests_list()
    [req] = resp["app_requests"]
    assert req["id"] == REQUEST
    assert req["app"] == {"id": OTHER_APP, "name": "Polly"}
    assert req["team"]["id"] == T2
    assert req["user"]["id"] == "W0BOB0001"
    assert [s["name"] for s in req["scopes"]] == ["chat:write", "channels:read"]
    assert (await web(ADMIN).admin_apps_requests_list(team_id=T1))["app_requests"] == []


async def test_approve_a_request_resolves_it(sim: GridSimulator, web: Web) -> None:
    assert (await web(ADMIN).admin_apps_approve(request_id=REQUEST, team_id=T2))["ok"]
    assert sim.admin.resolutions[(T2, OTHER_APP)] == "approved"
    assert (await web(ADMIN).admin_apps_requests_list())["app_requests"] == []
    assert await error_of(web(ADMIN).admin_apps_approve(request_id=REQUEST, team_id=T2)) == (
        "request_already_resolved"
    )
    assert await error_of(web(ADMIN).admin_apps_restrict(request_id=REQUEST, team_id=T2)) == (
        "request_already_resolved"
    )


async def test_restrict_by_app_id_resolves_its_pending_requests(sim: GridSimulator, web: Web) -> None:
    assert (await web(ADMIN).admin_apps_restrict(app_id=OTHER_APP, team_id=T2))["ok"]
    assert sim.admin.resolved == {REQUEST: "restricted"}
    assert (await web(ADMIN).admin_apps_requests_list())["app_requests"] == []


async def test_org_wide_restriction_blocks_approval_until_cleared(web: Web) -> None:
    await web(ADMIN).admin_apps_restrict(app_id=OTHER_APP, enterprise_id=ORG)
    assert (
        await error_of(web(ADMIN).admin_apps_approve(app_id=OTHER_APP, team_id=T1))
        == "app_restricted_org_wide"
    )
    assert await error_of(web(ADMIN).admin_apps_approve(app_id=OTHER_APP, enterprise_id=ORG)) == (
        "app_restricted_org_wide"
    )
    await clear(web(ADMIN), app_id=OTHER_APP, enterprise_id=ORG)
    assert (await web(ADMIN).admin_apps_approve(app_id=OTHER_APP, team_id=T1))["ok"]


async def test_clear_resolution_needs_an_existing_resolution(sim: GridSimulator, web: Web) -> None:
    assert await error_of(clear(web(ADMIN), app_id=OTHER_APP, team_id=T1)) == ("no_resolution_found")
    await web(ADMIN).admin_apps_approve(app_id=OTHER_APP, team_id=T1)
    assert (await clear(web(ADMIN), app_id=OTHER_APP, team_id=T1))["ok"]
    assert (T1, OTHER_APP) not in sim.admin.resolutions


@pytest.mark.parametrize(
    ("method", "args", "error"),
    [
        ("approve", {"app_id": OTHER_APP, "team_id": T1, "enterprise_id": ORG}, "too_many_teams_provided"),
        ("approve", {"app_id": OTHER_APP}, "invalid_arguments"),
        ("approve", {"app_id": OTHER_APP, "request_id": REQUEST, "team_id": T2}, "too_many_ids_provided"),
        ("approve", {"team_id": T1}, "request_id_or_app_id_is_required"),
        ("approve", {"app_id": "A0NOPE001", "team_id": T1}, "invalid_app_id"),
        ("approve", {"request_id": "Ar0NOPE01", "team_id": T1}, "invalid_request_id"),
        ("approve", {"app_id": OTHER_APP, "team_id": "T0NOPE001"}, "team_not_found"),
        ("restrict", {"app_id": OTHER_APP, "team_id": T1, "enterprise_id": ORG}, "too_many_teams_provided"),
        ("restrict", {"app_id": OTHER_APP}, "invalid_arguments"),
        ("restrict", {"app_id": OTHER_APP, "request_id": REQUEST, "team_id": T2}, "too_many_ids_provided"),
        ("restrict", {"team_id": T1}, "request_id_or_app_id_is_required"),
        ("restrict", {"app_id": "A0NOPE001", "team_id": T1}, "invalid_app_id"),
        ("restrict", {"request_id": "Ar0NOPE01", "team_id": T1}, "invalid_request_id"),
        ("restrict", {"app_id": OTHER_APP, "team_id": "T0NOPE001"}, "team_not_found"),
        ("clear_resolution", {"team_id": T1}, "invalid_arguments"),
        ("clear_resolution", {"app_id": OTHER_APP}, "invalid_arguments"),
        (
            "clear_resolution",
            {"app_id": OTHER_APP, "team_id": T1, "enterprise_id": ORG},
            "too_many_teams_provided",
        ),
        ("clear_resolution", {"app_id": "A0NOPE001", "team_id": T1}, "invalid_app_id"),
        ("clear_resolution", {"app_id": OTHER_APP, "team_id": "T0NOPE001"}, "team_not_found"),
        ("uninstall", {"enterprise_id": ORG}, "invalid_arguments"),
        ("uninstall", {"app_id": "A0NOPE001", "enterprise_id": ORG}, "app_not_found"),
        ("uninstall", {"app_id": "A0GRIDBOT1"}, "specify_enterprise_or_teams"),
        (
            "uninstall",
            {"app_id": "A0GRIDBOT1", "enterprise_id": ORG, "team_ids": T1},
            "specify_enterprise_or_teams",
        ),
        ("uninstall", {"app_id": "A0GRIDBOT1", "team_ids": f"{T1},T0NOPE001"}, "teams_not_found"),
        ("uninstall", {"app_id": "A0GRIDBOT1", "enterprise_id": "E0NOPE001"}, "enterprise_not_found"),
    ],
)
async def test_argument_rules(web: Web, method: str, args: dict[str, str], error: str) -> None:
    call = web(ADMIN).api_call(f"admin.apps.{method}", params=args)
    assert await error_of(call) == error


async def test_clear_resolution_answers_to_both_spellings(web: Web) -> None:
    await web(ADMIN).admin_apps_approve(app_id=OTHER_APP, team_id=T1)
    resp = await web(ADMIN).api_call(
        "admin.apps.clear_resolution", params={"app_id": OTHER_APP, "team_id": T1}
    )
    assert resp["ok"]


async def test_only_admins_with_user_tokens(web: Web) -> None:
    assert await error_of(web(GUEST).admin_apps_approve(app_id=OTHER_APP, team_id=T2)) == "not_an_admin"
    assert await error_of(web(GUEST).admin_apps_requests_list()) == "not_an_admin"
    assert (
        await error_of(web(BOT1).admin_apps_approve(app_id=OTHER_APP, team_id=T2)) == "not_allowed_token_type"
    )


async def test_uninstall_from_a_team_revokes_that_installation(
    sim: GridSimulator, web: Web, rtm: Callable[[str], Awaitable[WsClient]]
) -> None:
    one, two = await rtm(BOT1), await rtm(BOT2)
    assert (await web(ADMIN).admin_apps_uninstall(app_id="A0GRIDBOT1", team_ids=[T2]))["ok"]
    await two.wait_closed()
    assert await error_of(web(BOT2).auth_test()) == "token_revoked"
    assert (await web(BOT1).auth_test())["ok"]
    assert not one.closed.is_set()
    conv = (await web(BOT1).conversations_info(channel="C0SHARED1"))["channel"]
    assert conv["num_members"] == 5  # Team 2's bot left with its installation


async def test_uninstall_from_the_enterprise_removes_every_installation(sim: GridSimulator, web: Web) -> None:
    assert (await web(ADMIN).admin_apps_uninstall(app_id="A0GRIDBOT1", enterprise_id=ORG))["ok"]
    for token in (BOT1, BOT2):
        assert await error_of(web(token).rtm_connect()) == "token_revoked"
    assert [c.error for c in sim.calls_to("admin.apps.uninstall")] == [None]
