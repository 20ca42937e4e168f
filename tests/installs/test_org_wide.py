"""Org-wide installs end to end: two Runtimes on one real Redis, the simulator as Slack.

One org token answers in every workspace an org admin granted (platform-2026.md, "Org-ready apps");
a revoked workspace stops being served at once and its elections move; granted again, it is
served again; next to a workspace install of another app, each message is answered once.
"""

from __future__ import annotations

import contextlib
import time

from gridtest import wait_until
from installs.livekit import serving
from installs.orgkit import (
    ORG_APP,
    OWN,
    SHARED,
    T1,
    T2,
    T3,
    answers,
    org_config,
    org_install,
    say,
    sim,
    workspaces,
)

from gridbot.installs import RedisInstallStore
from gridbot.runtime import Runtime
from gridbot.testing import GridSimulator

__all__ = ["sim"]  # the fixture

async def test_an_org_install_answers_in_three_workspaces_and_a_revoked_one_stops_at_once(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    config = org_config(sim, redis_url, redis_prefix, {})
    await org_install(sim, store, grant=(T1, T2, T3))
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(Runtime(config, instance_id="proc-a")),
            await stack.enter_async_context(Runtime(config, instance_id="proc-b")),
        ]
        for team in (T1, T2, T3):  # one org token, a team per workspace, one process serving each
            await wait_until(lambda t=team: len(serving(runtimes, t)) == 1, 15, f"{team} served")
        await wait_until(lambda: workspaces(runtimes) == [T1, T2, T3], 10, "status lists three")
        for team in (T1, T2, T3):
            await say(sim, team, OWN[team], f"hello {team}")
        for team in (T1, T2, T3):  # each answered once, in its own workspace (team_id= on the call)
            await wait_until(lambda t=team: answers(sim, f"hello {t}") == [t], 10, f"{team} answers")

        # The shared channel: one answer; the workspace that gave it is then revoked.
        await say(sim, T1, SHARED, "shared before")
        await wait_until(lambda: len(answers(sim, "shared before")) == 1, 10, "the shared channel answers")
        [elected] = answers(sim, "shared before")
        assert elected in (T1, T2)
        other = T2 if elected == T1 else T1

        revoked_at = time.monotonic()
        await sim.org_installs.revoke(ORG_APP, elected)
        # team_access_revoked: no longer served, on no process, well before the next listing (6 s).
        await wait_until(lambda: not serving(runtimes, elected), 2, "the revoked workspace no longer served")
        stop_s = time.monotonic() - revoked_at
        await say(sim, T1, SHARED, "shared after")
        # The election moved with the fact: the other workspace answers, at once.
        await wait_until(lambda: answers(sim, "shared after") == [other], 3, "the election moved")
        answered_s = time.monotonic() - revoked_at
        await say(sim, T3, OWN[T3], "three still")
        await say(sim, elected, OWN[elected], "revoked own")
        await say(sim, other, OWN[other], "marker")  # written after: answered after
        await wait_until(lambda: answers(sim, "marker") == [other], 10, "the marker answered")
        await wait_until(lambda: answers(sim, "three still") == [T3], 10, "Team Three keeps answering")
        assert answers(sim, "revoked own") == []
        # The process that did not hear it lists the workspaces again at once (not in 6 s).
        rest = sorted({T1, T2, T3} - {elected})
        await wait_until(lambda: workspaces(runtimes) == rest, 2, "every process lists two")
        print(f"\norg-wide revoke: not served after {stop_s:.2f} s, shared channel answered after {answered_s:.2f} s")

        await sim.org_installs.grant(ORG_APP, elected)  # granted again (test_org_grant.py: at once)
        await wait_until(lambda: len(serving(runtimes, elected)) == 1, 15, "served again")
        await say(sim, elected, OWN[elected], "back again")
        await wait_until(lambda: answers(sim, "back again") == [elected], 10, "answers again")
        await wait_until(lambda: workspaces(runtimes) == [T1, T2, T3], 10, "status lists three again")
    await store.close()


def _apart(runtimes: list[Runtime]) -> bool:
    """Every process serving Team One's own installation lists only Team Two for the org install."""
    own = [rt for rt in runtimes if any(t.team_id == T1 and not t.org_wide for t in rt.supervisor.teams)]  # type: ignore[union-attr]
    return bool(own) and all([r["workspaces"] for r in rt.installs.live.rows()] == [[T2]] for rt in own)  # type: ignore[union-attr]


async def test_an_org_install_next_to_a_workspace_install_answers_each_message_once(
    sim: GridSimulator, redis_url: str, redis_prefix: str
) -> None:
    """Team One has the app installed on its own (static, Socket Mode) and the org install of
    another app is granted Team One and Team Two: both apps get the shared channel's and Team
    One's messages, and Slack writes every envelope twice; each message is answered once."""
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    config = org_config(sim, redis_url, redis_prefix, {T1: "socket_mode"})  # (before the org install's rows)
    await org_install(sim, store, grant=(T1, T2))
    sim.duplicate(1.0, after=0.05)  # every envelope again, authorized for another install when there is one
    async with contextlib.AsyncExitStack() as stack:
        runtimes = [
            await stack.enter_async_context(Runtime(config, instance_id="proc-a")),
            await stack.enter_async_context(Runtime(config, instance_id="proc-b")),
        ]
        await wait_until(lambda: serving(runtimes, T1) and len(serving(runtimes, T2)) == 1, 15, "served")
        # The process serving Team One's own installation does not serve it again for the org
        # install (one team per workspace in a process): the org install serves Team Two there.
        await wait_until(lambda: _apart(runtimes), 10, "the org install's workspaces, beside Team One's own")
        for n in range(5):
            await say(sim, T1, SHARED, f"shared {n}")
            await say(sim, T1, OWN[T1], f"one {n}")
            await say(sim, T2, OWN[T2], f"two {n}")
        await say(sim, T2, OWN[T2], "marker")
        await wait_until(lambda: len(answers(sim, "marker")) == 1, 10, "the marker answered")
        for what in ("shared", "one", "two"):
            await wait_until(lambda w=what: all(answers(sim, f"{w} {n}") for n in range(5)), 10, f"{what} answered")
        for n in range(5):
            assert len(answers(sim, f"shared {n}")) == 1
            assert answers(sim, f"one {n}") == [T1]
            assert answers(sim, f"two {n}") == [T2]
    await store.close()
