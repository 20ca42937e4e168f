"""Helpers for the playground tests: its JSON API, its event stream, and a headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gridbot.playground import Playground

T1, T2, T3 = "T0TEAM001", "T0TEAM002", "T0TEAM003"
SHARED = "C0SHARED1"
ALICE, BOB = "W0ALICE01", "W0BOB0001"

CHROMIUM = Path(os.environ.get("GRIDBOT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("GRIDBOT_CHROMEDRIVER", "/usr/bin/chromedriver"))


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return f"no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def browser_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("GRIDBOT_REQUIRE_BROWSER") == "1"


def require_browser() -> None:
    why = browser_missing()
    if why is None:
        return
    if browser_required():
        pytest.fail(f"the browser test is required here (CI or GRIDBOT_REQUIRE_BROWSER=1): {why}")
    pytest.skip(f"the playground's browser test is skipped: {why}")


class Api:
    """The playground's HTTP API, as the page uses it."""

    def __init__(self, playground: Playground, session: aiohttp.ClientSession) -> None:
        self.playground = playground
        self.session = session

    async def get(self, path: str) -> Any:
        async with self.session.get(self.playground.url + path.lstrip("/")) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(self, path: str, body: object, *, status: int = 200, **kwargs: Any) -> Any:
        async with self.session.post(self.playground.url + path.lstrip("/"), json=body, **kwargs) as response:
            data = await response.json()
            assert response.status == status, data
            return data

    async def say(self, user: str, channel: str, text: str) -> dict[str, Any]:
        story: dict[str, Any] = await self.post(
            "/api/messages", {"user": user, "channel": channel, "text": text}
        )
        return story

    async def until(
        self, path: str, pred: Callable[[Any], Any], timeout: float = 10.0, what: str = ""
    ) -> Any:
        """GET ``path`` until ``pred`` holds for its answer; that answer."""
        last: Any = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    last = await self.get(path)
                    if pred(last):
                        return last
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or path}; last answer: {last}") from None

    async def story(
        self, text: str, pred: Callable[[dict[str, Any]], Any], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The story of the message ``text`` once ``pred`` holds for it."""
        found = await self.until(
            "/api/messages",
            lambda stories: any(s["text"] == text and pred(s) for s in stories),
            timeout,
            what=f"the story of {text!r}",
        )
        story: dict[str, Any] = next(s for s in found if s["text"] == text and pred(s))
        return story

    async def timeline(self) -> list[str]:
        """The timeline's lines, as a page opened now shows them."""
        async with stream(self) as events:
            kind, snapshot = await events.next()
        assert kind == "snapshot"
        return [entry["text"] for entry in snapshot["timeline"]]

    async def connected(self, *teams: str) -> dict[str, Any]:
        state: dict[str, Any] = await self.until(
            "/api/state",
            lambda s: all(
                t["state"] == "connected" and t["heartbeat"] for t in s["teams"] if t["id"] in teams
            ),
            what=f"{teams} connected",
        )
        return state


def decisions(story: dict[str, Any]) -> dict[str, list[str]]:
    return {c["team"]: c["decisions"] for c in story["copies"]}


def team(state: dict[str, Any], team_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in state["teams"] if t["id"] == team_id)
    return found


@asynccontextmanager
async def running(**kwargs: Any) -> AsyncIterator[Api]:
    """A playground on free ports, and a client for its API."""
    async with Playground(port=0, **kwargs) as playground, aiohttp.ClientSession() as session:
        yield Api(playground, session)


class Stream:
    """The page's event stream, read as the browser's EventSource does."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def next(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        kind, data = "message", ""
        async with asyncio.timeout(timeout):
            while True:
                raw = await self._response.content.readline()
                assert raw, "the stream ended"
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    data += line[len("data: ") :]
                elif line == "" and data:
                    return kind, json.loads(data)

    async def until(
        self, pred: Callable[[str, dict[str, Any]], Any], timeout: float = 10.0
    ) -> tuple[str, dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while True:
                kind, data = await self.next(timeout)
                if pred(kind, data):
                    return kind, data


@asynccontextmanager
async def stream(api: Api) -> AsyncIterator[Stream]:
    async with api.session.get(api.playground.url + "api/stream") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield Stream(response)
