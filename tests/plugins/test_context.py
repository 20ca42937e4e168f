"""The context: how it is built, the plugin store's JSON contract, cached lookups, shared channels."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from gridbot import Context, Plugin, PluginStore
from gridbot.context import Contexts
from gridbot.directory import Directory
from gridbot.events import normalise
from gridbot.store import MemoryStore, Store
from gridbot.testing.pytest_plugin import Grid, GridFactory


async def test_the_plugin_store_keeps_json_and_namespaces(store: Store) -> None:
    mine, theirs = PluginStore(store, "mine"), PluginStore(store, "theirs")
    await mine.set("k", {"list": [1, 2.5, "x", None, True], "tuple": (1, 2), "nested": {"a": {}}})
    assert await mine.get("k") == {"list": [1, 2.5, "x", None, True], "tuple": [1, 2], "nested": {"a": {}}}
    assert await theirs.get("k", "absent") == "absent"
    assert await mine.delete("k") is True
    assert await mine.delete("k") is False
    assert await mine.get("k") is None


@dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", Point(1), datetime.datetime(2026, 1, 1), object()])
async def test_the_plugin_store_refuses_what_json_cannot_hold_in_both_stores(
    store: Store, value: Any
) -> None:
    with pytest.raises(TypeError, match="is not a JSON value"):
        await PluginStore(store, "p").set("k", value)
    assert await PluginStore(store, "p").get("k") is None


class FakeClient:
    """users.info answers for a tiny org; counts calls and lets a test hold them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def users_info(self, *, user: str) -> dict[str, Any]:
        self.calls.append(user)
        await self.gate.wait()
        # As the translation layer answers: ``id`` as asked, the W id in ``enterprise_user.id``
        # (enterprise-grid-developer-guide, "User object changes").
        ent = {"id": "W0BOB0001", "teams": ["T2"]}
        return {"user": {"id": user, "name": "bob", "team_id": "T2", "enterprise_user": ent}}


async def test_users_are_cached_for_a_ttl_under_both_ids_and_concurrent_misses_share_a_call() -> None:
    now = [0.0]
    directory = Directory(ttl=60, clock=lambda: now[0])
    client: Any = FakeClient()
    client.gate.clear()
    lookups = [
        asyncio.create_task(directory.user(client, "U0BOB0001"), name=f"test:lookup:{n}") for n in range(5)
    ]
    await asyncio.sleep(0)
    client.gate.set()
    profiles = await asyncio.gather(*lookups)
    assert {p.id for p in profiles} == {"W0BOB0001"} and client.calls == ["U0BOB0001"]
    await directory.user(client, "W0BOB0001")  # the stable id is cached too
    assert client.calls == ["U0BOB0001"]
    await directory.user(client, "W0BOB0001", fresh=True)
    assert client.calls == ["U0BOB0001", "W0BOB0001"]
    now[0] = 61.0
    await directory.user(client, "U0BOB0001")
    assert client.calls == ["U0BOB0001", "W0BOB0001", "U0BOB0001"]


sharing = Plugin("sharing")


@sharing.command("shared")
async def shared(ctx: Context) -> None:
    info = await ctx.channel_info()
    await ctx.reply(f"{await ctx.is_shared_channel()} teams={','.join(info.team_ids)} host={info.host_team}")


@sharing.command("me")
async def me(ctx: Context) -> None:
    person = await ctx.user()
    await ctx.reply(f"{person.id} on {ctx.team} of {ctx.enterprise_id}")


@pytest.fixture
async def grid(grid_factory: GridFactory, monkeypatch: pytest.MonkeyPatch) -> Grid:
    import sys
    import types

    module = types.ModuleType("gridbot_test_sharing")
    module.plugin = sharing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gridbot_test_sharing", module)
    return await grid_factory(plugins=["gridbot_test_sharing:plugin"])


async def test_shared_channels_are_decided_by_conversations_info_and_cached(grid: Grid) -> None:
    assert (await grid.ask("bob", "C0SHARED1", "!shared")).text == (
        "True teams=T0TEAM001,T0TEAM002,T0TEAM003 host=T0TEAM001"
    )
    assert (await grid.ask("alice", "C0ONE0001", "!shared")).text.startswith("False")
    before = len(grid.calls_to("conversations.info"))
    assert (await grid.ask("carol", "C0SHARED1", "!shared")).text.startswith("True")
    assert len(grid.calls_to("conversations.info")) == before  # answered from the cache


async def test_the_author_is_the_stable_id_whatever_id_their_team_shows(grid: Grid) -> None:
    # Team 2 sees Bob under his legacy U id; the event carries the mapping to his W id.
    assert (await grid.ask("bob", "G0TWOPRIV", "!me")).text == "W0BOB0001 on T0TEAM002 of E0GRID001"


class OneTeam:
    """The teams source of a process serving T0TEAM001 only."""

    def __init__(self) -> None:
        self.served = SimpleNamespace(
            team_id="T0TEAM001",
            enterprise_id="E0ORG0001",
            bot_user_id="U0BOT0001",
            installation="team:T0TEAM001",
        )
        self.client = AsyncWebClient(token="xoxb-test")

    def team(self, team_id: str) -> Any:
        return self.served if team_id == "T0TEAM001" else None

    def client_for(self, team_id: str) -> AsyncWebClient | None:
        return self.client if team_id == "T0TEAM001" else None


def test_contexts_are_built_complete_and_share_one_store_per_plugin() -> None:
    p = Plugin("p")

    @p.command("go")
    async def go(ctx: Context) -> None: ...

    teams, directory, store = OneTeam(), Directory(), MemoryStore()
    contexts = Contexts(teams, store, {"p": {"channel": "C1"}}, directory, tuple(p.routes), "?")
    raw = {"type": "message", "channel": "C1", "ts": "1.0", "user": "W1", "text": "?go"}
    event = normalise(raw, team_id="T0TEAM002", enterprise_id=None)  # team 2's copy, team 1 answers
    ctx = contexts.make(event, "T0TEAM001", "p")
    assert (ctx.event, ctx.team_id, ctx.client, ctx.users) == (event, "T0TEAM001", teams.client, directory)
    assert (ctx.enterprise_id, ctx.bot_user_id, ctx.installation) == (
        "E0ORG0001",
        "U0BOT0001",
        "team:T0TEAM001",
    )
    assert (ctx.plugin, ctx.config) == ("p", {"channel": "C1"})
    assert (ctx.routes, ctx.command_prefix) == (tuple(p.routes), "?")  # what help lists
    again, other = contexts.make(event, "T0TEAM001", "p"), contexts.make(event, "T0TEAM001", "q")
    assert again.store is ctx.store and other.store is not ctx.store and other.config == {}
    hook = contexts.hook("p")
    assert (hook.plugin, hook.store, hook.config) == ("p", ctx.store, {"channel": "C1"})
    with pytest.raises(RuntimeError, match="T0TEAM003 is not served"):
        contexts.make(event, "T0TEAM003", "p")
