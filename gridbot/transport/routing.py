"""Which of our installations serves an Events API payload: one decision, for Socket Mode and HTTP.

Slack names the installation in ``authorizations[0]`` (slack-protocol-notes.md C and D: "The
installation whose token you must use is ``authorizations[0].team_id``"; the top-level
``team_id`` names the *source* team in a shared channel). So:

* a **workspace install** (``is_enterprise_install`` false, a ``team_id``): that team, or none.
  Another team of the same enterprise must not take it: its token is not the one Slack
  authorized, and the workspace install it names may be another process's or another app's;
* an **org-wide install** (``is_enterprise_install`` true, ``team_id`` null: platform-2026.md,
  "Org-ready apps"): the granted workspace the event happened in (``context_team_id``, then
  ``team_id``), else any workspace of that org install we serve (the org token acts in each);
  a ``team_access_granted`` of an org none of whose workspaces we serve yet (the first grant)
  is carried by any team of the app's connection to the installs, which serve the workspace
  if we hold that org install (:meth:`gridbot.installs.live.LiveInstalls.granted`);
* no ``authorizations`` at all (older payloads): ``team_id``, ``team``, ``context_team_id``,
  ``view.app_installed_team_id``, as before.

Interactive payloads have their own rule (:func:`gridbot.interactive.payload.serving_team`):
the clicking user's team may be one we do not serve, and the answer must still be given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gridbot.dedup.facts import GRANTED
from gridbot.events import id_of
from gridbot.team import Team


def serving(
    body: Mapping[str, Any], by_id: Mapping[str, Team], teams: Iterable[Team]
) -> tuple[Team, str | None] | None:
    """The team (of ``by_id``: authenticated, by team id) that serves ``body``, and its
    enterprise id; None when none of ours may (``teams``: every team of the app)."""
    auths = body.get("authorizations")
    auth = auths[0] if isinstance(auths, list) and auths and isinstance(auths[0], dict) else None
    if auth is not None and auth.get("is_enterprise_install") is True:
        return _org_wide(body, auth, by_id, teams)
    if auth is not None and isinstance(auth.get("team_id"), str) and auth["team_id"]:
        team = by_id.get(auth["team_id"])
        if team is None or team.org_wide:  # (an org install's workspace is not a workspace install)
            return None
        return team, auth.get("enterprise_id") or team.enterprise_id
    view = body.get("view")
    for candidate in (
        body.get("team_id"),
        id_of(body.get("team")),
        body.get("context_team_id"),
        view.get("app_installed_team_id") if isinstance(view, dict) else None,
    ):
        team = by_id.get(candidate) if isinstance(candidate, str) else None
        if team is not None:
            return team, body.get("enterprise_id") or team.enterprise_id
    return None


def _org_wide(
    body: Mapping[str, Any], auth: Mapping[str, Any], by_id: Mapping[str, Team], teams: Iterable[Team]
) -> tuple[Team, str | None] | None:
    enterprise = auth.get("enterprise_id") or body.get("context_enterprise_id") or body.get("enterprise_id")
    if not isinstance(enterprise, str) or not enterprise:
        return None

    def ours(team: Team | None) -> bool:
        # A workspace of the org install, or an org token configured as one team (its
        # auth.test names the org: team_id is the enterprise id [infer]).
        return (
            team is not None
            and team.enterprise_id == enterprise
            and (team.org_wide or team.team_id == enterprise)
        )

    for candidate in (body.get("context_team_id"), body.get("team_id")):
        team = by_id.get(candidate) if isinstance(candidate, str) else None
        if team is not None and ours(team):
            return team, enterprise
    for team in teams:  # an org-level event (team_access_*), or a workspace we were not granted
        if team.team_id in by_id and ours(team):
            return team, enterprise
    event = body.get("event")
    if isinstance(event, dict) and event.get("type") == GRANTED:
        # Slack sends it once per app: a team of the app's connection carries it, for the org
        return next(((t, enterprise) for t in teams if t.team_id in by_id), None)
    return None
