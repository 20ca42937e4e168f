"""The OAuth v2 install flow, as aiohttp routes: an install page, Slack's redirect, a result page.

platform-2026.md, "OAuth and token rotation": the install link goes to Slack's authorize URL with
``client_id``, ``scope``, ``user_scope``, ``state`` and ``redirect_uri``; Slack redirects back with
``code`` and ``state``; ``oauth.v2.access`` exchanges the code for the installation. ``state`` is
issued here, kept in the store with a TTL and consumed on first use (a replayed or forged
redirect is refused before Slack is asked). Pages say what happened in plain words and never
show a token.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from gridbot.installs.rotation import oauth_client
from gridbot.installs.store import InstallStore
from gridbot.logs import get_logger
from gridbot.secrets import Secret
from gridbot.store.connect import Client, connect
from gridbot.store.keys import Keys

log = get_logger("gridbot.installs")


@dataclass(frozen=True)
class OAuthSettings:
    client_id: str
    client_secret: Secret
    redirect_uri: str  # https://<your host>/slack/oauth_redirect, as registered with the app
    scopes: tuple[str, ...]
    user_scopes: tuple[str, ...] = ()
    install_path: str = "/slack/install"
    redirect_path: str = "/slack/oauth_redirect"
    authorize_url: str = "https://slack.com/oauth/v2/authorize"
    state_ttl: float = 600.0  # seconds an install link stays good


class MemoryStates:
    """Pending install states of one process (tests, one replica)."""

    def __init__(self, ttl: float = 600.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._pending: dict[str, float] = {}

    async def issue(self) -> str:
        state = secrets.token_urlsafe(24)
        self._pending[state] = self._clock() + self.ttl
        return state

    async def consume(self, state: str) -> bool:
        return self._pending.pop(state, 0.0) > self._clock()


class RedisStates:
    """Pending install states in Redis: any replica may serve the redirect; GETDEL makes a state
    good exactly once, and its key (named by the state's SHA-256, not the state) lapses after
    ``ttl``."""

    def __init__(self, client: Client, *, keys: Keys | None = None, ttl: float = 600.0) -> None:
        self._r, self.keys, self.ttl = client, keys or Keys(), ttl

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "gridbot", ttl: float = 600.0) -> RedisStates:
        return cls(connect(url), keys=Keys(key_prefix), ttl=ttl)

    def _key(self, state: str) -> str:
        return self.keys.oauth_state(hashlib.sha256(state.encode()).hexdigest())

    async def issue(self) -> str:
        state = secrets.token_urlsafe(24)
        await self._r.set(self._key(state), "1", px=int(self.ttl * 1000))
        return state

    async def consume(self, state: str) -> bool:
        return await self._r.getdel(self._key(state)) is not None

    async def close(self) -> None:
        await self._r.aclose()


States = MemoryStates | RedisStates


def installation_from(answer: dict[str, Any], bot_id: str) -> Installation:
    """slack_sdk's Installation from an ``oauth.v2.access`` answer (a workspace or org-wide install)."""
    team = answer.get("team") or {}
    enterprise = answer.get("enterprise") or {}
    user = answer.get("authed_user") or {}
    hook = answer.get("incoming_webhook") or {}
    return Installation(
        app_id=answer.get("app_id"),
        enterprise_id=enterprise.get("id"),
        enterprise_name=enterprise.get("name"),
        team_id=team.get("id"),
        team_name=team.get("name"),
        bot_token=answer.get("access_token"),
        bot_id=bot_id,
        bot_user_id=answer.get("bot_user_id"),
        bot_scopes=answer.get("scope", ""),
        bot_refresh_token=answer.get("refresh_token"),
        bot_token_expires_in=answer.get("expires_in"),
        user_id=user.get("id", ""),
        user_token=user.get("access_token"),
        user_scopes=user.get("scope", ""),
        user_refresh_token=user.get("refresh_token"),
        user_token_expires_in=user.get("expires_in"),
        incoming_webhook_url=hook.get("url"),
        incoming_webhook_channel=hook.get("channel"),
        incoming_webhook_channel_id=hook.get("channel_id"),
        incoming_webhook_configuration_url=hook.get("configuration_url"),
        is_enterprise_install=bool(answer.get("is_enterprise_install")),
        token_type=answer.get("token_type"),
    )


def _page(title: str, *lines: str, status: int = 200) -> web.Response:
    body = "".join(f"<p>{line}</p>" for line in lines)
    head = f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
    text = f"{head}<h1>{html.escape(title)}</h1>{body}"
    return web.Response(text=text, status=status, content_type="text/html")


@dataclass
class InstallFlow:
    """The install page and the redirect endpoint; :meth:`add_routes` puts them on an app."""

    settings: OAuthSettings
    store: InstallStore
    states: States
    client: AsyncWebClient = field(default_factory=oauth_client)

    def __post_init__(self) -> None:
        s = self.settings
        # AuthorizeUrlGenerator pastes redirect_uri into the URL as it is: encoded here, once.
        self._urls = AuthorizeUrlGenerator(
            client_id=s.client_id,
            redirect_uri=quote(s.redirect_uri, safe=""),
            scopes=list(s.scopes),
            user_scopes=list(s.user_scopes),
            authorization_url=s.authorize_url,
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"InstallFlow(client_id={s.client_id!r}, redirect_uri={s.redirect_uri!r})"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.settings.install_path, self.install_page)
        app.router.add_get(self.settings.redirect_path, self.redirect)

    async def install_page(self, request: web.Request) -> web.Response:
        url = html.escape(self._urls.generate(await self.states.issue()))
        minutes = int(self.settings.state_ttl // 60)
        return _page(
            "Install the app",
            f'<a href="{url}" id="add-to-slack">Add to Slack</a>',
            f"The link is good once, for {minutes} minutes.",
        )

    async def redirect(self, request: web.Request) -> web.Response:
        start_again = f'<a href="{html.escape(self.settings.install_path)}">Start the installation again</a>.'
        query = request.query
        if "error" in query:
            return _page(
                "Nothing was installed",
                f"Slack did not install the app: {html.escape(query['error'])} "
                "(for example, the install was cancelled).",
                start_again,
                status=400,
            )
        if not await self.states.consume(query.get("state", "")):
            return _page(
                "Nothing was installed",
                "This install link has expired or was already used, or it did not start here.",
                start_again,
                status=400,
            )
        code = query.get("code", "")
        if not code:
            return _page("Nothing was installed", "Slack's answer carried no code.", start_again, status=400)
        try:
            answer = await self._exchange(code)
        except SlackApiError as exc:
            error = html.escape(str(exc.response.get("error") or "unknown_error"))
            log.warning("install.oauth_failed", error=error)
            refused = f"Slack refused the install ({error})."
            return _page("Nothing was installed", refused, start_again, status=400)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("install.oauth_failed", error=type(exc).__name__)
            return _page("Nothing was installed", "gridbot could not reach Slack.", start_again, status=502)
        try:
            await self.store.async_save(answer)
        except Exception as exc:  # the store is down: say so rather than a bare 500
            log.error("install.save_failed", error=type(exc).__name__)
            return _page(
                "Nothing was installed",
                "Slack accepted the install but gridbot could not store it.",
                start_again,
                status=503,
            )
        where = self._where(answer)
        log.info(
            "install.completed",
            enterprise_id=answer.enterprise_id,
            team_id=answer.team_id,
            org_wide=answer.is_enterprise_install,
        )
        return _page("Installed", where)

    async def _exchange(self, code: str) -> Installation:
        s = self.settings
        answer: AsyncSlackResponse = await self.client.oauth_v2_access(
            client_id=s.client_id, client_secret=s.client_secret.get(), code=code, redirect_uri=s.redirect_uri
        )
        data = dict(answer.data) if isinstance(answer.data, dict) else {}
        token = str(data.get("access_token") or "")
        if not token:  # a user-scopes-only install: gridbot serves bots
            raise SlackApiError("no bot token", {"ok": False, "error": "no_bot_scopes_granted"})  # type: ignore[no-untyped-call]
        Secret(token)  # registered for the log redaction
        bot = AsyncWebClient(token=token, base_url=self.client.base_url, logger=self.client.logger)
        who = await bot.auth_test()
        return installation_from(data, str(who.get("bot_id") or ""))

    @staticmethod
    def _where(inst: Installation) -> str:
        if inst.is_enterprise_install:
            name = html.escape(inst.enterprise_name or inst.enterprise_id or "the org")
            return (
                f"The app is installed org-wide in {name} ({html.escape(inst.enterprise_id or '')}). "
                "An org admin now chooses the workspaces it may work in."
            )
        name = html.escape(inst.team_name or inst.team_id or "the workspace")
        return f"The app is installed in the workspace {name} ({html.escape(inst.team_id or '')})."
