"""The context: the plugin store's JSON contract, cached lookups, shared-channel decisions."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

import pytest

from gridbot import Context, Plugin, PluginStore
from gridbot.directory import Directory
from gridbot.store import Store
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
        stable = {"U0BOB0001": "W0BOB0001"}.get(user, user)
        return {"user": {"id": stable, "name": "bob", "team_id": "T2", "enterprise_user": {"teams": ["T2"]}}}


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
