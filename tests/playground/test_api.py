"""The playground's server side, without a browser: the org, a message's story, the stream, and
requests the page would never send."""

from __future__ import annotations

import json
import re

from playground.playkit import ALICE, BOB, SHARED, T1, T2, T3, decisions, running, stream

from gridbot.testing.simulator import default_topology

TOKENS = re.compile(r"(xox[abpers]|xapp)-")


def secrets_of_the_org() -> list[str]:
    topo = default_topology()
    found = [i.bot_token for a in topo.apps for i in a.installations]
    found += [a.app_token for a in topo.apps if a.app_token]
    found += [u.user_token for u in topo.users if u.user_token]
    return found


async def test_the_org_shows_teams_channels_and_which_bots_are_members_and_no_token() -> None:
    async with running() as api:
        org = await api.get("/api/org")
        teams = {t["id"]: t for t in org["teams"]}
        assert [b["bot_user_id"] for b in teams[T1]["bots"]] == ["U0BOT0001"]
        assert teams[T3]["bots"] == []  # the app is not installed on Team Three
        shared = next(c for c in org["conversations"] if c["id"] == SHARED)
        assert shared["label"] == "#shared-all"
        assert shared["teams"] == [T1, T2, T3] and shared["bot_teams"] == [T1, T2]
        assert ALICE in shared["members"]
        assert [p["name"] for p in org["plugins"]] == ["echo", "help"]
        assert org["store"] == "in-memory" and org["faults"]["redis"] is False

        await api.connected(T1, T2)
        await api.say(ALICE, SHARED, "echo hello")
        await api.story("echo hello", lambda s: s["replies"])
        pages = [await api.get(p) for p in ("/api/org", "/api/state", "/api/messages")]
        async with api.session.get(api.playground.url) as response:
            html = await response.text()
        async with stream(api) as events:
            _, snapshot = await events.next()
        text = json.dumps([pages, snapshot]) + html
        assert not TOKENS.search(text)
        assert not any(token in text for token in secrets_of_the_org())


async def test_a_message_shows_each_teams_copy_the_decisions_the_elected_team_and_the_reply() -> None:
    async with running() as api:
        await api.connected(T1, T2)
        await api.say(ALICE, SHARED, "echo hello grid")
        story = await api.story("echo hello grid", lambda s: s["replies"] and len(s["copies"]) == 2)
        assert story["user"] == ALICE and story["source_team"] == T1
        # one copy per team's socket; Team One (the host) is elected, Team Two's copy is a duplicate
        assert all(len(c["sockets"]) == 1 for c in story["copies"])
        assert decisions(story) == {T1: ["handled"], T2: ["duplicate"]}
        assert story["elected"] == T1 and story["handled_by"] == T1 and story["how"] == "handled"
        assert [(r["team"], r["text"]) for r in story["replies"]] == [(T1, "hello grid")]

        state = await api.until("/api/state", lambda s: s["elections"], what="the election")
        assert [(e["channel"], e["team"], e["epoch"]) for e in state["elections"]] == [(SHARED, T1, 1)]
        assert state["counters"]["handled"] == 1 and state["counters"]["duplicate"] == 1


async def test_the_stream_starts_with_a_snapshot_then_follows_the_decisions_and_the_election() -> None:
    async with running() as api:
        await api.connected(T1, T2)
        async with stream(api) as events:
            kind, snapshot = await events.next()
            assert kind == "snapshot"
            assert {t["id"] for t in snapshot["org"]["teams"]} == {T1, T2, T3}
            assert snapshot["messages"] == []
            await api.say(BOB, SHARED, "echo live")
            _, update = await events.until(
                lambda kind, item: (
                    kind == "message" and item["story"]["replies"] and len(item["story"]["copies"]) == 2
                )
            )
            story = update["story"]
            assert decisions(story) == {T1: ["handled"], T2: ["duplicate"]}
            assert story["replies"][0]["text"] == "live" and update["seq"] > snapshot["seq"]
        async with stream(api) as events:  # a page opened later gets the whole story at once
            _, snapshot = await events.next()
            assert [s["text"] for s in snapshot["messages"]] == ["echo live"]
            timeline = [entry["text"] for entry in snapshot["timeline"]]
            assert "#shared-all: Team One elected (candidates Team One, Team Two; host Team One)" in timeline


async def test_requests_the_page_would_not_send_are_refused_with_a_reason() -> None:
    async with running() as api:
        refused = await api.post(
            "/api/messages", {"user": BOB, "channel": "C0ONE0001", "text": "hi"}, status=400
        )
        assert "not a member" in refused["error"]
        missing = await api.post("/api/messages", {"user": BOB, "channel": SHARED}, status=400)
        assert "text" in missing["error"]
        url = api.playground.url + "api/messages"
        async with api.session.post(url, data="user=W0BOB0001", headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415  # a cross-site form cannot post JSON
        async with api.session.get(api.playground.url + "api/org", headers={"Host": "evil.example:80"}) as r:
            assert r.status == 403  # a rebound DNS name does not reach the playground
        unknown = await api.post("/api/faults", {"fault": "melt", "team": T1}, status=409)
        assert "unknown fault" in unknown["error"]
        no_app = await api.post("/api/faults", {"fault": "cut", "team": T3}, status=409)
        assert "no app is installed" in no_app["error"]
        no_redis = await api.post("/api/faults", {"fault": "redis_stop"}, status=409)
        assert "in-memory" in no_redis["error"]
        assert (await api.get("/api/messages")) == []
