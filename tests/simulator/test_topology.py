"""Topologies: the bundled org and clear errors for broken files."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gridbot.testing import default_topology
from gridbot.testing.simulator import topology_from_dict


def base() -> dict[str, Any]:
    return {
        "enterprise": {"id": "E0X", "name": "X"},
        "teams": [{"id": "T1", "name": "One", "domain": "one"}, {"id": "T2", "name": "Two", "domain": "two"}],
        "apps": [
            {
                "id": "A1",
                "name": "bot",
                "installations": [
                    {"team": "T1", "bot_token": "xoxb-sim-1", "bot_user_id": "U0B1", "bot_id": "B1"}
                ],
            }
        ],
        "users": [{"id": "W1", "name": "w", "home_team": "T1", "teams": ["T1"]}],
        "conversations": [
            {
                "id": "C1",
                "name": "c",
                "kind": "channel",
                "teams": ["T1"],
                "host_team": "T1",
                "members": ["W1"],
            },
            {"id": "C2", "name": "c2", "kind": "channel", "teams": ["T1"], "host_team": "T1"},
            {"id": "C3", "name": "c3", "kind": "channel", "teams": ["T1"], "host_team": "T1"},
        ],
    }


def test_the_default_org_is_the_guides_scenario() -> None:
    topo = default_topology()
    assert [t.id for t in topo.teams] == ["T0TEAM001", "T0TEAM002", "T0TEAM003"]
    [app] = topo.apps
    assert [i.team for i in app.installations] == ["T0TEAM001", "T0TEAM002"]
    shared = topo.conversation_by_id["C0SHARED1"]
    assert shared.teams == ("T0TEAM001", "T0TEAM002", "T0TEAM003")
    assert shared.bot_teams == ("T0TEAM001", "T0TEAM002")
    assert topo.user_by_id["U0BOB0001"].id == "W0BOB0001"
    assert topo.user_by_id["W0DAVE001"].is_admin
    assert topo.user_by_id["W0ERIN001"].is_restricted
    assert len(topo.app_requests) == 1
    tokens = [i.bot_token for i in app.installations] + [app.app_token or ""]
    assert all("-sim-" in t for t in tokens)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("conversations", 2, "teams"), ["T1", "T9"], "conversations[2].teams: unknown team 'T9'"),
        (("conversations", 0, "kind"), "room", "conversations[0].kind: 'room' is not one of"),
        (("conversations", 0, "members"), ["W9"], "conversations[0].members: unknown user 'W9'"),
        (("conversations", 0, "bot_teams"), ["T2"], "conversations[0].bot_teams: unknown team of this"),
        (("conversations", 1, "id"), "C1", "conversations: duplicate id 'C1'"),
        (("users", 0, "home_team"), "T9", "users[0].home_team: unknown team 'T9'"),
        (("users", 0, "legacy_ids"), {"T2": "U1"}, "users[0].legacy_ids: unknown team of this user 'T2'"),
        (("apps", 0, "installations", 0, "team"), "T9", "apps[0].installations[0].team: unknown team 'T9'"),
        (
            ("apps", 0, "installations", 0, "bot_token"),
            5,
            "apps[0].installations[0].bot_token: expected a string",
        ),
        (("teams", 1, "id"), "T1", "teams: duplicate id 'T1'"),
        (("enterprise", "id"), "X1", "enterprise.id: 'X1' must start with 'E'"),
    ],
)
def test_errors_name_the_offending_key(path: tuple[Any, ...], value: Any, message: str) -> None:
    data = base()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError) as e:
        topology_from_dict(data)
    assert str(e.value).startswith(message)


def test_bot_teams_need_an_installation() -> None:
    data = base()
    data["conversations"][0]["teams"] = ["T1", "T2"]
    data["conversations"][0]["bot_teams"] = ["T2"]
    with pytest.raises(ValueError, match=r"conversations\[0\].bot_teams: no app is installed on team 'T2'"):
        topology_from_dict(data)


def test_dataclasses_validate_too() -> None:
    topo = default_topology()
    with pytest.raises(ValueError, match="users: duplicate id 'W0ALICE01'"):
        dataclasses.replace(topo, users=(*topo.users, topo.users[0]))
