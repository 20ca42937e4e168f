"""Slack's OAuth v2 for the simulated org: the authorize redirect, ``oauth.v2.access`` with the
``code`` and ``refresh_token`` grants, single-use refresh tokens, expiring tokens.

Every behaviour cites /work/shared/reference/platform-2026.md, "OAuth and token rotation":

* "redirect to ``/oauth/v2/authorize`` with ``client_id``, ``scope``, ``user_scope``, ``state``,
  ``redirect_uri``; the redirect brings ``code`` and ``state``": :meth:`OAuth.authorize`. There is
  no consent page: the install is approved (or declined, :attr:`OAuth.decline`) at once, in the
  workspace named by Slack's ``team`` parameter or :attr:`OAuth.next_team`. A code is good once.
* "``oauth.v2.access`` (client id + secret, code) returns the bot token, team / enterprise,
  ``is_enterprise_install``, ``authed_user``, scopes, and with rotation on ``expires_in`` and
  ``refresh_token``": :meth:`OAuth.access`. The client credentials come as HTTP Basic (what
  slack_sdk sends) or as form fields.
* "access tokens expire after 12 h (``expires_in`` 43,200) ... refresh tokens are single-use ...
  A call with an expired token answers ``token_expired``": a refresh token spent once answers
  ``invalid_refresh_token`` the second time; an expired token answers ``token_expired`` on every
  method (``OrgState.expired``). Lifetimes run at the simulator's ``time_scale``.

What the reference does not say, the simulator does not grant: an access token replaced by a
refresh keeps working only until its own expiry, never longer.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import math
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from .model import Installation
from .ratelimits import RateLimits
from .records import ApiCall, Journal
from .state import OrgState

CODE_TTL = 600.0  # Slack-seconds an authorization code stays good
FORGET_AFTER = 86_400.0  # Slack-seconds after its expiry an old token is forgotten (invalid_auth)


@dataclass(frozen=True)
class OAuthClient:
    """An app's OAuth credentials and settings (App Credentials, Token Rotation)."""

    app_id: str
    client_id: str
    client_secret: str
    token_rotation: bool = False
    expires_in: int = 43_200  # Slack-seconds an access token lives, with rotation on


@dataclass(frozen=True)
class _Grant:
    client: OAuthClient
    team: str
    user: str
    scopes: str
    user_scopes: str
    redirect_uri: str
    expires: float


class _Refused(Exception):
    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.headers = error, status, headers or {}


class OAuth:
    """OAuth for the simulated org's apps; ``sim.oauth``. Counts what happened in :attr:`counts`."""

    def __init__(self, state: OrgState, journal: Journal, time_scale: float, limits: RateLimits) -> None:
        self._state = state
        self._limits = limits
        self._journal = journal
        self._scale = time_scale
        self.clients: dict[str, OAuthClient] = {}
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # live refresh token -> (app id, team)
        self.next_team: str | None = None
        self.decline = False
        self.counts: Counter[str] = Counter()
        self._serial = itertools.count(1)

    def register(self, app_id: str, *, token_rotation: bool = False, expires_in: int = 43_200) -> OAuthClient:
        """Give app ``app_id`` OAuth credentials (what its settings page shows)."""
        if app_id not in self._state.topology.app_by_id:
            raise ValueError(f"unknown app {app_id!r}")
        client = OAuthClient(
            app_id,
            f"{next(self._serial)}.{app_id}",
            secrets.token_hex(16),
            token_rotation=token_rotation,
            expires_in=expires_in,
        )
        self.clients[client.client_id] = client
        return client

    def expire(self, token: str) -> None:
        """Slack's clock passes ``token``'s expiry now: every call with it answers ``token_expired``."""
        self._state.expires[token] = self._state.now()

    def drop_refresh_tokens(self) -> None:
        """Slack no longer knows any live refresh token (spent by another client, or revoked):
        the next refresh answers ``invalid_refresh_token``."""
        self._refresh.clear()

    # -- the browser's side ----------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        client = self.clients.get(q.get("client_id", ""))
        redirect = q.get("redirect_uri", "")
        if client is None:
            return web.Response(status=400, text="invalid_client_id")
        if not redirect.startswith(("http://", "https://")):
            return web.Response(status=400, text="bad_redirect_uri")
        back = {"state": q.get("state", "")}
        team = q.get("team") or self.next_team
        if self.decline or team not in self._state.topology.team_by_id:
            back["error"] = "access_denied"
        else:
            assert team is not None
            code = f"{next(self._serial)}.{secrets.token_hex(12)}"
            self._codes[code] = _Grant(
                client,
                team,
                self._installer(team),
                q.get("scope", ""),
                q.get("user_scope", ""),
                redirect,
                self._state.now() + CODE_TTL / self._scale,
            )
            back["code"] = code
        sep = "&" if "?" in redirect else "?"
        raise web.HTTPFound(f"{redirect}{sep}{urlencode(back)}")

    def _installer(self, team: str) -> str:
        users = [u for u in self._state.topology.users if team in u.teams]
        admins = [u for u in users if u.is_admin or u.is_owner]
        return (admins or users)[0].id if users else ""

    # -- oauth.v2.access ---------------------------------------------------------------------------

    async def access(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        grant = form.get("grant_type") or "authorization_code"
        try:
            client = self._client(request, form)
            # oauth.v2.access is Tier 4 (its reference page), per app like every method
            wait = self._limits.check("oauth.v2.access", None, client.app_id, None)
            if wait is not None:
                raise _Refused("ratelimited", status=429, headers={"Retry-After": str(math.ceil(wait))})
            if grant == "authorization_code":
                body = self._exchange(client, form)
            elif grant == "refresh_token":
                body = self._rotate(client, form.get("refresh_token", ""))
            else:
                raise _Refused("invalid_grant_type")
            body = {"ok": True, **body}
            error, status, headers = None, 200, {}
        except _Refused as refused:
            body, error = {"ok": False, "error": refused.error}, refused.error
            status, headers = refused.status, refused.headers
            self.counts[f"refused:{error}"] += 1
        self._journal.calls.append(
            ApiCall("oauth.v2.access", None, None, {"grant_type": grant}, status, error, time.time())
        )
        return web.Response(
            body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
        )

    def _client(self, request: web.Request, form: dict[str, str]) -> OAuthClient:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        client = self.clients.get(client_id)
        if client is None:
            raise _Refused("invalid_client_id")
        if not secrets.compare_digest(client.client_secret, secret):
            raise _Refused("bad_client_secret")
        return client

    def _exchange(self, client: OAuthClient, form: dict[str, str]) -> dict[str, Any]:
        grant = self._codes.pop(form.get("code", ""), None)  # good once
        if grant is None or grant.client is not client or grant.expires <= self._state.now():
            raise _Refused("invalid_code")
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            raise _Refused("bad_redirect_uri")
        self.counts["installs"] += 1
        installation = self._install(client, grant.team)
        team = self._state.topology.team_by_id[grant.team]
        enterprise = self._state.topology.enterprise
        body: dict[str, Any] = {
            "app_id": client.app_id,
            "authed_user": {"id": grant.user, "scope": grant.user_scopes},
            "scope": grant.scopes,
            "token_type": "bot",
            "bot_user_id": installation.bot_user_id,
            "team": {"id": team.id, "name": team.name},
            "enterprise": {"id": enterprise.id, "name": enterprise.name},
            "is_enterprise_install": False,
        }
        return body | self._pair(client, installation.bot_token, grant.team)

    def _rotate(self, client: OAuthClient, spend: str) -> dict[str, Any]:
        owner = self._refresh.pop(spend, None)  # single-use: gone from here on
        if owner is None or owner[0] != client.app_id:
            raise _Refused("invalid_refresh_token")
        app_id, team = owner
        bot = next((b for b in self._state.topology.bots_on(team) if b.app.id == app_id), None)
        if bot is None or not self._state.is_live(bot):
            raise _Refused("invalid_refresh_token")
        self.counts["refreshes"] += 1
        token = self._token(client, team)
        self._alias(bot.installation.bot_token, token)
        self._replace(app_id, dataclasses.replace(bot.installation, bot_token=token))
        return self._pair(client, token, team)

    # -- tokens --------------------------------------------------------------------------------------

    def _token(self, client: OAuthClient, team: str) -> str:
        prefix = "xoxe.xoxb-1" if client.token_rotation else "xoxb"
        return f"{prefix}-sim-{team}-{next(self._serial)}-{secrets.token_hex(6)}"

    def _pair(self, client: OAuthClient, token: str, team: str) -> dict[str, Any]:
        if not client.token_rotation:
            return {"access_token": token}
        refresh = f"xoxe-1-sim-{next(self._serial)}-{secrets.token_hex(8)}"
        self._refresh[refresh] = (client.app_id, team)
        self._state.expires[token] = self._state.now() + client.expires_in / self._scale
        return {"access_token": token, "refresh_token": refresh, "expires_in": client.expires_in}

    def _alias(self, old: str, current: str) -> None:
        """``old`` keeps working as ``current``'s installation until its own expiry (then it
        answers ``token_expired``); long-dead tokens are forgotten (bounded memory)."""
        forget = self._state.now() - FORGET_AFTER / self._scale
        for token in [t for t, deadline in self._state.expires.items() if deadline <= forget]:
            self._state.aliases.pop(token, None)
            del self._state.expires[token]
        for earlier, target in list(self._state.aliases.items()):
            if target == old:
                self._state.aliases[earlier] = current
        self._state.aliases[old] = current

    def _install(self, client: OAuthClient, team: str) -> Installation:
        topo = self._state.topology
        app = topo.app_by_id[client.app_id]
        current = next((i for i in app.installations if i.team == team), None)
        if (
            current is not None
            and not client.token_rotation
            and self._state.is_live(next(b for b in topo.bots_on(team) if b.app.id == app.id))
        ):
            return current  # a reinstall without rotation: the same bot token
        n = next(self._serial)
        installation = Installation(
            team=team,
            bot_token=self._token(client, team),
            bot_user_id=current.bot_user_id if current else f"U0OAUTH{n:03d}",
            bot_id=current.bot_id if current else f"B0OAUTH{n:03d}",
        )
        self._replace(client.app_id, installation)
        self._state.uninstalled.discard((client.app_id, team))
        return installation

    def _replace(self, app_id: str, installation: Installation) -> None:
        topo = self._state.topology
        app = topo.app_by_id[app_id]
        kept = tuple(i for i in app.installations if i.team != installation.team)
        new_app = dataclasses.replace(app, installations=(*kept, installation))
        apps = tuple(new_app if a.id == app_id else a for a in topo.apps)
        self._state.topology = dataclasses.replace(topo, apps=apps)
