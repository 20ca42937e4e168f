"""A six-team org for scale-out tests: six RTM installations, one shared channel, six solo ones."""

from __future__ import annotations

from typing import Any

from gridbot.testing.simulator.model import Topology, topology_from_dict

SIX = [f"T0SIX000{n}" for n in range(1, 7)]
ALL = "C0ALLSIX1"  # shared by all six teams, hosted by the first
SOLO = {team: f"C0SOLO00{n}" for n, team in enumerate(SIX, start=1)}  # one team each
AUTHOR = {team: f"W0USER00{n}" for n, team in enumerate(SIX, start=1)}


def six_team_topology() -> Topology:
    """One org, six teams, the app installed on each (six RTM installations)."""
    data: dict[str, Any] = {
        "enterprise": {"id": "E0SIXORG1", "name": "Six Teams Inc"},
        "teams": [{"id": t, "name": f"Team {n}", "domain": f"six-{n}"} for n, t in enumerate(SIX, 1)],
        "apps": [
            {
                "id": "A0SIXBOT1",
                "name": "gridbot",
                "installations": [
                    {
                        "team": t,
                        "bot_token": f"xoxb-sim-{t}",
                        "bot_user_id": f"U0BOTSX0{n}",
                        "bot_id": f"B0BOTSX0{n}",
                    }
                    for n, t in enumerate(SIX, 1)
                ],
            }
        ],
        "users": [
            {"id": AUTHOR[t], "name": f"user{n}", "home_team": t, "teams": [t]} for n, t in enumerate(SIX, 1)
        ],
        "conversations": [
            {
                "id": ALL,
                "kind": "channel",
                "name": "all-six",
                "teams": SIX,
                "host_team": SIX[0],
                "members": list(AUTHOR.values()),
                "bot_teams": SIX,
            },
            *(
                {
                    "id": SOLO[t],
                    "kind": "channel",
                    "name": f"solo-{n}",
                    "teams": [t],
                    "host_team": t,
                    "members": [AUTHOR[t]],
                    "bot_teams": [t],
                }
                for n, t in enumerate(SIX, 1)
            ),
        ],
    }
    return topology_from_dict(data)
