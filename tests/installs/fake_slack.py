"""A small stand-in for Slack's OAuth endpoints, as strict as Slack where it matters here.

platform-2026.md, "OAuth and token rotation": ``oauth.v2.access`` takes the client id and secret
(HTTP Basic, as slack_sdk sends them) and either a ``code`` (single use, from the authorize
redirect) or ``grant_type=refresh_token``; **refresh tokens are single-use**; an expired access
token answers ``token_expired``. "Org-ready apps": an org-wide install answers
``is_enterprise_install: true`` with ``team`` null.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CLIENT_ID = "111.222"
CLIENT_SECRET = "s3cr3t-client-secret-value"
EXPIRES_IN = 43_200


@dataclass
class FakeSlack:
    refresh_tokens: set[str] = field(default_factory=set)  # unspent
    valid_tokens: set[str] = field(default_factory=set)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> install answer (single use)
    refreshes: list[str] = field(default_factory=list)  # refresh tokens spent successfully
    refused: list[str] = field(default_factory=list)  # errors answered
    requests: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # refreshes wait for it
    expires_in: int = EXPIRES_IN
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.gate.set()

    def issue(self, label: str) -> tuple[str, str]:
        n = next(self._serial)
        token, refresh = f"xoxe.xoxb-1-{label}-{n}", f"xoxe-1-{label}-{n}"
        self.valid_tokens.add(token)
        self.refresh_tokens.add(refresh)
        return token, refresh

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/oauth.v2.access", self._access)
        app.router.add_post("/api/auth.test", self._auth_test)
        return app

    def _refuse(self, error: str) -> web.Response:
        self.refused.append(error)
        return web.json_response({"ok": False, "error": error})

    async def _access(self, request: web.Request) -> web.Response:
        self.requests += 1
        form = await request.post()
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return self._refuse("bad_client_secret")
        if form.get("grant_type") == "refresh_token":
            await self.gate.wait()
            spent = str(form.get("refresh_token"))
            if spent not in self.refresh_tokens:
                return self._refuse("invalid_refresh_token")
            self.refresh_tokens.discard(spent)  # single use
            self.refreshes.append(spent)
            token, refresh = self.issue("rotated")
            answer = {"ok": True, "token_type": "bot", "access_token": token, "refresh_token": refresh}
            return web.json_response({**answer, "expires_in": self.expires_in})
        answer = self.codes.pop(str(form.get("code")), None)
        if answer is None:
            return self._refuse("invalid_code")
        self.valid_tokens.add(answer["access_token"])
        if answer.get("refresh_token"):
            self.refresh_tokens.add(answer["refresh_token"])
        return web.json_response(answer)

    async def _auth_test(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return web.json_response({"ok": False, "error": "token_expired"})
        return web.json_response({"ok": True, "team_id": "T1", "user_id": "UB1", "bot_id": "B1"})

    def expire(self, token: str) -> None:
        self.valid_tokens.discard(token)
