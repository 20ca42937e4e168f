"""An org-wide install's workspaces as teams: their id is the workspace's whatever ``auth.test``
says, and an event is routed to the workspace it happened in (slack-protocol-notes.md C, D)."""

from __future__ import annotations

from gridtest import T1, T2

from gridbot.auth import record
from gridbot.config import TeamConfig
from gridbot.secrets import Secret
from gridbot.team import Team, TeamState
from gridbot.transport.routing import serving

E = "E0GRID001"
ORG_AUTH = {"enterprise_id": E, "team_id": None, "is_enterprise_install": True}


def _workspace(index: int, team_id: str) -> Team:
    config = TeamConfig(transport="socket_mode", bot_token=Secret("xoxb-org"), workspace=team_id, name=f"org:{E}")
    return Team(index, config, enterprise_id=E, state=TeamState.CONNECTED)


def _own(index: int, team_id: str) -> Team:
    config = TeamConfig(transport="socket_mode", bot_token=Secret(f"xoxb-{index}"))
    return Team(index, config, team_id=team_id, enterprise_id=E, state=TeamState.CONNECTED)


def test_a_workspace_of_an_org_install_keeps_its_id_whatever_auth_test_says() -> None:
    team = _workspace(0, T2)
    assert team.team_id == T2  # before auth.test answers
    record(team, {"team_id": E, "enterprise_id": E, "user_id": "U0ORGBOT", "bot_id": "B0ORGBOT"})
    assert (team.team_id, team.bot_user_id, team.installation) == (T2, "U0ORGBOT", f"org:{E}")
    own = _own(1, T1)
    record(own, {"team_id": T1, "enterprise_id": E})
    assert own.installation == f"team:{T1}"


def test_an_org_event_goes_to_the_workspace_it_happened_in() -> None:
    one, two = _workspace(0, T1), _workspace(1, T2)
    by_id = {T1: one, T2: two}
    event = {"team_id": T1, "context_team_id": T2, "authorizations": [ORG_AUTH]}
    assert serving(event, by_id, [one, two]) == (two, E)
    # an org-level event (team_access_*), or a workspace not granted: a workspace we serve
    elsewhere = {"team_id": E, "authorizations": [ORG_AUTH]}
    assert serving(elsewhere, by_id, [one, two]) == (one, E)
    assert serving({**elsewhere, "authorizations": [{**ORG_AUTH, "enterprise_id": "E0OTHER"}]}, by_id, []) is None


def test_org_and_workspace_authorizations_do_not_borrow_each_others_teams() -> None:
    org_one, own_two = _workspace(0, T1), _own(1, T2)
    by_id = {T1: org_one, T2: own_two}
    # a workspace install's event for Team One: the org install's team there is not that install
    workspace_auth = {"enterprise_id": E, "team_id": T1, "is_enterprise_install": False}
    assert serving({"authorizations": [workspace_auth]}, by_id, [org_one, own_two]) is None
    # the org install's event in Team Two, where only a workspace install of ours is: its own
    # team is not the org install's, so a workspace of the org install takes it
    assert serving({"context_team_id": T2, "authorizations": [ORG_AUTH]}, by_id, [org_one, own_two]) == (
        org_one,
        E,
    )


def test_a_first_grant_is_carried_by_a_team_of_the_apps_connection() -> None:
    """``team_access_granted`` of an org none of whose workspaces we serve yet: Slack sends it once
    to the app, so a team of the app's connection takes it to the installs (which serve the org
    install if we hold it); any other org-level event of that org is still not ours."""
    other = _own(0, "T0ELSE001")  # a workspace install of the same app, in another org
    by_id = {"T0ELSE001": other}
    grant = {"team_id": E, "event": {"type": "team_access_granted", "team_ids": [T1]}, "authorizations": [ORG_AUTH]}
    assert serving(grant, by_id, [other]) == (other, E)
    revoked = {**grant, "event": {"type": "team_access_revoked", "team_ids": [T1]}}
    assert serving(revoked, by_id, [other]) is None
    assert serving(grant, {}, [other]) is None  # nothing authenticated here: unknown_installation
