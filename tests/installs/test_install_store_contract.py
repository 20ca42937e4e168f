"""The installation store contract, identical for memory and the real Redis, through slack_sdk's
``AsyncInstallationStore`` interface (what Bolt and the SDK's OAuth tooling call) and gridbot's own
lookup. Platform reference: /work/shared/reference/platform-2026.md, "Org-ready apps"."""

from __future__ import annotations

import asyncio

from gridtest import eventually
from slack_sdk.oauth.installation_store import Installation

from gridbot.installs import Claim, InstallStore
from gridbot.secrets import Secret

BOT = "xoxe.xoxb-1-WORKSPACE-T1"
REFRESH = "xoxe-1-REFRESH-T1"
ORG_BOT = "xoxe.xoxb-1-ORG-E1"
ORG_REFRESH = "xoxe-1-REFRESH-E1"


def workspace(
    team: str = "T1", enterprise: str | None = None, user: str = "U1", token: str = BOT
) -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=enterprise,
        team_id=team,
        team_name=f"team {team}",
        bot_token=token,
        bot_id="B1",
        bot_user_id="UB1",
        bot_scopes=["chat:write", "channels:history"],
        bot_refresh_token=REFRESH,
        bot_token_expires_at=2_000_000_000,
        user_id=user,
        user_token=f"xoxp-user-{user}",
        user_scopes=["search:read"],
    )


def org_wide(installed_from: str | None = "T9") -> Installation:
    """Bolt hands the store an org install with the team it was installed from (#1639)."""
    return Installation(
        app_id="A1",
        enterprise_id="E1",
        enterprise_name="Grid Org",
        team_id=installed_from,
        bot_token=ORG_BOT,
        bot_id="BO1",
        bot_user_id="UBO1",
        bot_scopes="chat:write,team:read",
        bot_refresh_token=ORG_REFRESH,
        bot_token_expires_in=43_200,
        user_id="UADMIN",
        is_enterprise_install=True,
    )


async def test_a_workspace_install_round_trips_every_field(installs: InstallStore) -> None:
    await installs.async_save(workspace())
    found = await installs.async_find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    got = (found.app_id, found.team_id, found.team_name, found.bot_token, found.bot_id, found.bot_user_id)
    assert got == ("A1", "T1", "team T1", BOT, "B1", "UB1")
    assert list(found.bot_scopes) == ["chat:write", "channels:history"]
    assert (found.bot_refresh_token, found.bot_token_expires_at) == (REFRESH, 2_000_000_000)
    assert (found.user_id, found.user_token, list(found.user_scopes)) == (
        "U1",
        "xoxp-user-U1",
        ["search:read"],
    )
    assert found.is_enterprise_install is False
    bot = await installs.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == BOT and bot.bot_refresh_token == REFRESH
    assert await installs.ids() == ["team:T1"]


async def test_an_org_install_saved_with_a_team_id_is_found_by_its_enterprise(installs: InstallStore) -> None:
    """python-slack-sdk #1639: saved under the installing team, looked up by enterprise: never found."""
    await installs.async_save(org_wide(installed_from="T9"))
    for team in ("T9", "T2", None):
        found = await installs.async_find_installation(
            enterprise_id="E1", team_id=team, is_enterprise_install=True
        )
        assert found is not None and found.bot_token == ORG_BOT, team
        assert found.is_enterprise_install and found.team_id is None
    bot = await installs.async_find_bot(enterprise_id="E1", team_id=None, is_enterprise_install=True)
    assert bot is not None and bot.bot_token == ORG_BOT
    assert await installs.ids() == ["org:E1"]


async def test_a_granted_workspace_without_its_own_install_is_served_by_the_org(
    installs: InstallStore,
) -> None:
    await installs.async_save(org_wide())
    await installs.async_save(workspace(team="T1", enterprise="E1"))
    own = await installs.async_find_bot(enterprise_id="E1", team_id="T1")
    granted = await installs.async_find_bot(enterprise_id="E1", team_id="T2")
    assert own is not None and own.bot_token == BOT
    assert granted is not None and granted.bot_token == ORG_BOT
    assert await installs.async_find_bot(enterprise_id="E2", team_id="T3") is None


async def test_a_workspace_install_is_found_after_the_workspace_joins_an_org(installs: InstallStore) -> None:
    await installs.async_save(workspace(team="T1", enterprise=None))
    found = await installs.async_find_bot(enterprise_id="E7", team_id="T1")
    assert found is not None and found.bot_token == BOT


async def test_each_installer_has_their_own_record_and_the_latest_is_the_default(
    installs: InstallStore,
) -> None:
    await installs.async_save(workspace(user="U1"))
    await installs.async_save(workspace(user="U2", token=BOT + "-2"))
    u1 = await installs.async_find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    latest = await installs.async_find_installation(enterprise_id=None, team_id="T1")
    assert u1 is not None and u1.user_token == "xoxp-user-U1"
    assert latest is not None and latest.user_id == "U2" and latest.bot_token == BOT + "-2"
    assert await installs.async_find_installation(enterprise_id=None, team_id="T1", user_id="U3") is None
    await installs.async_delete_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert await installs.async_find_installation(enterprise_id=None, team_id="T1", user_id="U1") is None
    assert await installs.async_find_bot(enterprise_id=None, team_id="T1") is not None


async def test_deleting_a_workspace_never_drops_the_org_install(installs: InstallStore) -> None:
    await installs.async_save(org_wide())
    await installs.async_save(workspace(team="T1", enterprise="E1"))
    await installs.async_delete_all(enterprise_id="E1", team_id="T1")
    assert await installs.ids() == ["org:E1"]
    assert (await installs.async_find_bot(enterprise_id="E1", team_id="T1")).bot_token == ORG_BOT  # type: ignore[union-attr]
    await installs.async_delete_all(enterprise_id="E1", team_id=None)
    assert await installs.ids() == []
    assert await installs.async_find_bot(enterprise_id="E1", team_id="T1") is None


async def test_one_refresh_token_is_claimed_by_exactly_one_of_many(installs: InstallStore) -> None:
    await installs.async_save(workspace())
    spend = Secret(REFRESH)
    answers = await asyncio.gather(
        *(installs.claim_refresh("team:T1", spend, f"p{n}", 30) for n in range(20))
    )
    assert sorted(a.value for a in answers) == ["busy"] * 19 + ["won"]


async def test_commit_is_compare_and_set_on_the_spent_refresh_token(installs: InstallStore) -> None:
    await installs.async_save(workspace())
    spend = Secret(REFRESH)
    assert await installs.claim_refresh("team:T1", spend, "p1", 30) is Claim.WON
    new, new_refresh = Secret("xoxe.xoxb-1-NEW"), Secret("xoxe-1-NEW")
    assert await installs.commit_refresh("team:T1", spend, new, new_refresh, 2_000_043_200)
    # a second commit of the same spent token (a loser that spent it too) changes nothing
    assert not await installs.commit_refresh(
        "team:T1", spend, Secret("xoxe.xoxb-LOSER"), Secret("xoxe-1-L"), 1
    )
    current = await installs.get("team:T1")
    assert current is not None and current.bot_token == new and current.refresh_token == new_refresh
    assert current.expires_at == 2_000_043_200
    assert await installs.claim_refresh("team:T1", spend, "p2", 30) is Claim.STALE
    assert not await installs.fail_refresh("team:T1", spend, "stale failure")
    assert await installs.claim_refresh("team:T1", new_refresh, "p2", 30) is Claim.WON
    assert await installs.claim_refresh("team:T9", new_refresh, "p2", 30) is Claim.GONE


async def test_a_failed_install_is_hidden_from_the_sdk_and_a_reinstall_revives_it(
    installs: InstallStore,
) -> None:
    await installs.async_save(workspace())
    assert await installs.fail_refresh("team:T1", Secret(REFRESH), "invalid_refresh_token")
    assert await installs.claim_refresh("team:T1", Secret(REFRESH), "p1", 30) is Claim.FAILED
    failed = await installs.get("team:T1")
    assert failed is not None and failed.failed == "invalid_refresh_token"
    assert await installs.async_find_bot(enterprise_id=None, team_id="T1") is None
    await installs.async_save(workspace())
    assert await installs.async_find_bot(enterprise_id=None, team_id="T1") is not None


async def test_a_released_claim_can_be_won_again(installs: InstallStore) -> None:
    await installs.async_save(workspace())
    spend = Secret(REFRESH)
    assert await installs.claim_refresh("team:T1", spend, "p1", 30) is Claim.WON
    await installs.release_refresh("team:T1", spend, "p2")  # not the holder: nothing happens
    assert await installs.claim_refresh("team:T1", spend, "p2", 30) is Claim.BUSY
    await installs.release_refresh("team:T1", spend, "p1")
    assert await installs.claim_refresh("team:T1", spend, "p2", 30) is Claim.WON


async def test_no_token_in_a_repr(installs: InstallStore) -> None:
    await installs.async_save(org_wide())
    install = await installs.get("org:E1")
    text = repr(install) + str(install) + repr(installs)
    assert ORG_BOT not in text and ORG_REFRESH not in text
    assert "E1" in text


async def test_a_claim_lapses_after_its_ttl(installs: InstallStore) -> None:
    """A process that died holding a claim does not stop rotation for good."""
    await installs.async_save(workspace())
    spend = Secret(REFRESH)
    assert await installs.claim_refresh("team:T1", spend, "dead", 0.05) is Claim.WON
    assert await installs.claim_refresh("team:T1", spend, "p2", 30) is Claim.BUSY

    async def won() -> Claim | None:
        claim = await installs.claim_refresh("team:T1", spend, "p2", 30)
        return claim if claim is Claim.WON else None

    await eventually(won, 5)


async def test_a_touch_moves_the_version_and_writes_nothing(installs: InstallStore) -> None:
    """Every watcher reads the store again (a revoked workspace of an org install)."""
    await installs.async_save(org_wide())
    before, ids = await installs.version(), await installs.ids()
    touched = await installs.touch()
    assert await installs.version() == touched != before
    assert await installs.ids() == ids
