"""The Web API: request parsing, token checks, rate limits, fault injection, recording, and the
methods about identity and connections. chat.py and listing.py register the rest."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from . import render
from .faults import Faults
from .model import Conversation
from .ratelimits import RateLimits, retry_after_header
from .records import ApiCall, Journal
from .state import OrgState, TokenInfo, TokenKind
from .translate import resolve_user


class ApiError(Exception):
    """A Slack error response: ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    token: TokenInfo
    host: str

    def arg(self, name: str) -> str:
        """A required string argument (``invalid_arguments`` when missing)."""
        value = self.args.get(name)
        if value is None or value == "":
            raise ApiError("invalid_arguments")
        return str(value)

    def opt(self, name: str) -> str | None:
        value = self.args.get(name)
        return None if value is None or value == "" else str(value)


Handler = Callable[[Call], Awaitable[dict[str, Any]]]
Method = tuple[Handler, frozenset[TokenKind]]
BOT_OR_USER: frozenset[TokenKind] = frozenset({"bot", "user"})


class WebApi:
    def __init__(self, state: OrgState, faults: Faults, journal: Journal, limits: RateLimits) -> None:
        self._state = state
        self._faults = faults
        self._journal = journal
        self.limits = limits
        # Who an org-wide install's token acts as for a call (org_installs.py); None: not one.
        self.org_token: Callable[[str, str, dict[str, Any]], TokenInfo | None] | None = None
        self.methods: dict[str, Method] = {
            "auth.test": (self.auth_test, BOT_OR_USER),
            "team.info": (self.team_info, BOT_OR_USER),
            "rtm.connect": (self.rtm_connect, frozenset({"bot"})),
            "apps.connections.open": (self.connections_open, frozenset({"app"})),
            "conversations.info": (self.conversations_info, BOT_OR_USER),
            "users.info": (self.users_info, BOT_OR_USER),
        }

    def add(self, name: str, handler: Handler, kinds: frozenset[TokenKind]) -> None:
        self.methods[name] = (handler, kinds)

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token = await _read_args(request)
        info: TokenInfo | None = None
        try:
            delay = self._faults.delay_for(method)
            if delay:
                await asyncio.sleep(delay)
            if method not in self.methods:
                raise ApiError("unknown_method")
            handler, kinds = self.methods[method]
            info = self._authenticate(token, method, args)
            if info.kind not in kinds:
                raise ApiError("not_allowed_token_type")
            migrating = self._state.migrating.get(info.team_id or "")
            if migrating is not None:
                raise ApiError(migrating)
            # an injected connect failure stands for Slack's answer: it spends no budget
            if info.bot is not None and method == "rtm.connect":
                self._connect_fault(info.bot.team, info.bot.app.id)
            elif info.app is not None and method == "apps.connections.open":
                self._connect_fault(info.app.id)
            self._rate_limit(method, info, args)
            body = await handler(Call(method, args, info, request.host))
            status, headers, error = 200, {}, None
            body = {"ok": True, **body}
        except ApiError as e:
            status, headers, error = e.status, e.headers, e.error
            body = {"ok": False, "error": e.error}
        self._journal.calls.append(
            ApiCall(
                method=method,
                team_id=info.team_id if info else None,
                user_id=info.user_id if info else None,
                args=args,
                status=status,
                error=error,
                time=time.time(),
            )
        )
        return web.Response(
            body=orjson.dumps(body),
            status=status,
            headers=headers,
            content_type="application/json",
        )

    def _authenticate(self, token: str | None, method: str, args: dict[str, Any]) -> TokenInfo:
        if not token:
            raise ApiError("not_authed")
        acting = self.org_token(token, method, args) if self.org_token is not None else None
        if acting is not None:
            return acting
        info = self._state.tokens.get(token)
        if info is None:
            raise ApiError("invalid_auth")
        if token in self._state.revoked:
            raise ApiError("token_revoked")
        if info.bot is not None and not self._state.is_live(info.bot):
            raise ApiError("token_revoked")  # an earlier (rotated) token of an uninstalled app
        if self._state.expired(token):
            raise ApiError("token_expired")
        return info

    def _rate_limit(self, method: str, info: TokenInfo, args: dict[str, Any]) -> None:
        # per method x workspace x app (slack-protocol-notes.md E); a user token stands for its user
        caller = info.app.id if info.app is not None else f"user:{info.user_id}"
        channel = args.get("channel")
        wait = self.limits.check(method, info.team_id, caller, channel if isinstance(channel, str) else None)
        if wait is not None:
            raise ApiError("ratelimited", status=429, headers={"Retry-After": retry_after_header(wait)})

    def _connect_fault(self, *ids: str | None) -> None:
        fault = self._faults.take_connect_fault(ids)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                # Retry-After is whole seconds; round up so a client never retries early
                headers["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
            raise ApiError(fault.error, status=fault.status, headers=headers)

    def visible(self, call: Call, channel: str | None = None) -> Conversation:
        """The conversation if the caller may see it: connected to the caller's team, and for a
        private channel, MPDM or DM, the caller a member. Anything else is ``channel_not_found``,
        as Slack answers for a private channel to a non-member (it does not say it exists)."""
        conv = self._state.conversation(channel or call.arg("channel"))
        tok = call.token
        if conv is not None:
            if tok.user is not None:
                connected = bool(set(tok.user.teams) & set(conv.teams))
                member = tok.user.id in conv.members
            else:
                connected = tok.team_id in conv.teams
                member = tok.bot is not None and self._state.is_member(tok.bot, conv)
            if connected and (conv.kind == "channel" or member):
                return conv
        raise ApiError("channel_not_found")

    def is_member(self, call: Call, conv: Conversation) -> bool:
        tok = call.token
        if tok.bot is not None:
            return self._state.is_member(tok.bot, conv)
        return tok.user_id in conv.members

    # methods
    async def auth_test(self, call: Call) -> dict[str, Any]:
        tok = call.token
        assert tok.team_id is not None
        team = self._state.topology.team_by_id[tok.team_id]
        body: dict[str, Any] = {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "team_id": team.id,
            "enterprise_id": self._state.topology.enterprise.id,
            "is_enterprise_install": False,
        }
        if tok.bot is not None:
            body |= {
                "user": tok.bot.app.name,
                "user_id": tok.bot.installation.bot_user_id,
                "bot_id": tok.bot.installation.bot_id,
            }
        elif tok.user is not None:
            body |= {"user": tok.user.name, "user_id": tok.user.id}
        return body

    async def team_info(self, call: Call) -> dict[str, Any]:
        team_id = call.opt("team") or call.token.team_id
        team = self._state.topology.team_by_id.get(team_id or "")
        if team is None:
            raise ApiError("team_not_found")
        ent = self._state.topology.enterprise
        return {
            "team": {
                "id": team.id,
                "name": team.name,
                "domain": team.domain,
                "email_domain": "",
                "icon": {"image_default": True},
                "enterprise_id": ent.id,
                "enterprise_name": ent.name,
            }
        }

    async def rtm_connect(self, call: Call) -> dict[str, Any]:
        bot = call.token.bot
        assert bot is not None
        if not self._state.is_installed(bot):
            raise ApiError("invalid_auth")
        team = self._state.topology.team_by_id[bot.team]
        ticket = self._state.make_ticket("rtm", call.token.token, bot=bot)
        return {
            "self": {"id": bot.installation.bot_user_id, "name": bot.app.name},
            "team": {"domain": team.domain, "id": team.id, "name": team.name},
            "url": f"ws://{call.host}/rtm?ticket={ticket}",
        }

    async def connections_open(self, call: Call) -> dict[str, Any]:
        app = call.token.app
        assert app is not None
        if app.id in self._faults.link_disabled:
            raise ApiError("link_disabled")
        ticket = self._state.make_ticket("socket_mode", call.token.token, app=app)
        return {"url": f"ws://{call.host}/link/?ticket={ticket}&app_id={app.id}"}

    async def conversations_info(self, call: Call) -> dict[str, Any]:
        conv = self.visible(call)
        member = self.is_member(call, conv)
        return {"channel": render.conversation(self._state, conv, call.token.viewer, is_member=member)}

    async def users_info(self, call: Call) -> dict[str, Any]:
        topo = self._state.topology
        user_id = call.arg("user")
        user = resolve_user(topo, user_id, call.token.team_id)
        if user is not None:
            return {"user": render.user_object(topo, user, call.token.viewer)}
        bot = topo.bot_by_user_id(user_id)
        if bot is not None:
            return {"user": render.bot_user_object(bot)}
        raise ApiError("user_not_found")


async def _read_args(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Arguments from the query string and a form or JSON body; the token kept apart."""
    args: dict[str, Any] = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json(loads=orjson.loads)
            except ValueError:
                body = None
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    token = args.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth[len("Bearer ") :].strip()
    return args, token if isinstance(token, str) else None
