"""Who a team is, as ``auth.test`` says: asked until it answers when a team starts, and again every
so often (a team may have been moved into an enterprise: the Enterprise Grid guide's advice)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from gridbot.logs import get_logger
from gridbot.slack import Action, Backoff, classify
from gridbot.team import Team, TeamState

log = get_logger("gridbot.supervisor")


async def authenticate(team: Team, client: AsyncWebClient, paused_probe_interval: float) -> bool:
    """``auth.test`` until it answers, recording what it says on ``team``; False (and the team
    in its final state, logged) when no retry can help."""
    backoff = Backoff()
    while True:
        try:
            response = await client.auth_test()
        except Exception as exc:  # classified: a bad team must not take the daemon down
            verdict = classify(exc)
            if verdict.terminal is not None:
                team.state, team.error = verdict.terminal, verdict.error
                log.error(
                    "team.stopped",
                    team=team.label,
                    team_id=team.team_id or None,
                    state=team.state,
                    error=verdict.error,
                )
                return False
            if verdict.action is Action.PAUSE:
                team.state, team.error = TeamState.PAUSED, verdict.error
                log.warning("team.paused", team=team.label, error=verdict.error)
                await asyncio.sleep(paused_probe_interval)
                continue
            delay = backoff.next(verdict.retry_after)
            log.warning("team.auth_retry", team=team.label, error=verdict.error, retry_in=round(delay, 2))
            await asyncio.sleep(delay)
            continue
        record(team, response.data if isinstance(response.data, dict) else {})
        return True


def record(team: Team, data: dict[str, Any]) -> None:
    """What ``auth.test`` said, on ``team``."""
    enterprise = data.get("enterprise_id") or None
    if team.team_id and enterprise and enterprise != team.enterprise_id:
        log.warning("team.enterprise_changed", team_id=team.team_id, enterprise_id=enterprise)
    if not team.org_wide:  # an org token's auth.test speaks for the org, not for our workspace
        team.team_id = str(data.get("team_id", ""))
    team.enterprise_id = enterprise
    team.bot_user_id = str(data.get("user_id", ""))
    team.bot_id = str(data.get("bot_id", ""))
    if team.state in (TeamState.STARTING, TeamState.PAUSED):
        team.state, team.error = TeamState.CONNECTING, None
    log.info(
        "team.authenticated",
        team_id=team.team_id,
        enterprise_id=team.enterprise_id,
        bot_user_id=team.bot_user_id,
        transport=team.config.transport,
    )


async def poll_auth(
    teams: Callable[[], list[Team]], client_for: Callable[[str], AsyncWebClient | None], interval: float
) -> None:
    """``auth.test`` for every live team every ``interval`` seconds (runs until cancelled)."""
    while True:
        await asyncio.sleep(interval)
        for team in teams():
            client = client_for(team.team_id)
            if client is None or team.state.final:
                continue
            try:
                response = await client.auth_test()
            except Exception as exc:
                log.warning("team.auth_poll_failed", team_id=team.team_id, error=classify(exc).error)
                continue
            record(team, response.data if isinstance(response.data, dict) else {})
