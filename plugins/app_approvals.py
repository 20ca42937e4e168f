"""app_approvals: app install requests as a chat workflow for org admins (the admin.apps API).

On ``app_requested`` the request is posted to ``admin_channel`` with Approve / Restrict buttons
for the requesting team, and for the whole org where the request comes from an org. A click is
decided like a command: the clicker must be an org admin or owner (``users.info``, asked afresh),
the ``admin.apps`` call is made, and the message is updated in place with the outcome, who decided
and when; a refusal or an error is answered to the clicker alone. Org admins and owners can also
answer with ``approve``, ``restrict``, ``clear`` or ``uninstall``, for one team or the whole org.
Who may act is decided from ``users.info`` of the message's author (or the clicker), asked afresh
on every request; nothing in the message text can claim it. The calls use the admin's user token
from the config::

    [plugins.app_approvals]
    admin_channel = "C0ADMINS1"
    user_token = "${GRIDBOT_ADMIN_TOKEN}"   # a user token with admin.apps:write
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot import Context, InteractiveContext, Plugin, UserNotFound, get_logger

from ._admin_errors import ERRORS, MAX_UNINSTALL_TEAMS, explain

__all__ = ["ERRORS", "Action", "Refusal", "explain", "parse", "plugin", "usage"]

plugin = Plugin("app_approvals")
log = get_logger("gridbot.plugins.app_approvals")

REQUEST_TTL = 30 * 24 * 3600.0  # how long a posted request's details are remembered
_REQUEST_ID = re.compile(r"Ar[A-Z0-9]+")
_APP_ID = re.compile(r"A[A-Z0-9]+")
_TEAM_ID = re.compile(r"T[A-Z0-9]+")
_ENTERPRISE_ID = re.compile(r"E[A-Z0-9]+")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

DONE = {
    "approve": "approved",
    "restrict": "restricted",
    "clear": "cleared the decision about",
    "uninstall": "uninstalled",
}

class Refusal(Exception):
    """A request that is answered with a sentence and never reaches Slack's admin API."""


@dataclass(frozen=True)
class Action:
    verb: str
    app_id: str | None = None
    request_id: str | None = None
    team_ids: tuple[str, ...] = ()
    enterprise_id: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        if self.enterprise_id:
            return "the whole org"
        return ", ".join(f"team {t}" for t in self.team_ids)


def parse(verb: str, words: list[str], enterprise_id: str | None) -> Action:
    """The admin.apps arguments for ``verb words``, or a Refusal saying which rule was broken."""
    apps: list[str] = []
    requests: list[str] = []
    teams: list[str] = []
    org: list[str] = []
    expect_team = False
    for raw in words:
        for word in filter(None, raw.strip(",").split(",")):
            low = word.lower()
            if low in ("team", "teams", "workspace", "workspaces"):
                expect_team = True
            elif low in ("org", "enterprise", "organization", "organisation"):
                org.append(enterprise_id or "")
            elif low in ("for", "on", "in", "from", "the", "whole", "and"):
                continue
            elif _REQUEST_ID.fullmatch(word):
                requests.append(word)
            elif _APP_ID.fullmatch(word):
                apps.append(word)
            elif _TEAM_ID.fullmatch(word):
                teams.append(word)
            elif _ENTERPRISE_ID.fullmatch(word):
                org.append(word)
            else:
                raise Refusal(f"I don't understand `{word}`. {usage(verb)}")
    if expect_team and not teams:
        raise Refusal(f"Which team? Give its id (T…). {usage(verb)}")
    if apps and requests:
        raise Refusal("Give either the app id (A…) or the request id (Ar…), not both.")
    if len(apps) + len(requests) > 1:
        raise Refusal("One app or request at a time, please.")
    if not apps and not requests:
        raise Refusal(f"Which app? Give its app id (A…) or the request id (Ar…). {usage(verb)}")
    if requests and verb in ("clear", "uninstall"):
        raise Refusal(f"`{verb}` needs the app id (A…), not a request id.")
    if teams and org:
        raise Refusal("Exactly one of a team or the whole org, not both.")
    if not teams and not org:
        raise Refusal(f"Where? Say `team T…` for one team or `org` for the whole org. {usage(verb)}")
    if org and not org[0]:
        raise Refusal("This workspace isn't part of an Enterprise Grid org, so `org` means nothing here.")
    if len(set(org)) > 1:
        raise Refusal("One org at a time, please.")
    if verb != "uninstall" and len(teams) > 1:
        raise Refusal(f"`{verb}` works on one team at a time (or `org` for all of them).")
    if len(teams) > MAX_UNINSTALL_TEAMS:
        raise Refusal(f"At most {MAX_UNINSTALL_TEAMS} teams at once.")
    args: dict[str, Any] = {}
    if apps:
        args["app_id"] = apps[0]
    if requests:
        args["request_id"] = requests[0]
    if org:
        args["enterprise_id"] = org[0]
    elif verb == "uninstall":
        args["team_ids"] = list(dict.fromkeys(teams))
    else:
        args["team_id"] = teams[0]
    return Action(
        verb,
        app_id=apps[0] if apps else None,
        request_id=requests[0] if requests else None,
        team_ids=tuple(dict.fromkeys(teams)),
        enterprise_id=org[0] if org else None,
        args=args,
    )


def usage(verb: str) -> str:
    target = "<app id>" if verb in ("clear", "uninstall") else "<app id or request id>"
    teams = "team <team id>[,<team id>…]" if verb == "uninstall" else "team <team id>"
    return f"Usage: `{verb} {target} ({teams} | org)`"


def user_token(config: Mapping[str, Any]) -> str | None:
    """The configured admin user token; ``${VAR}`` is read from the environment."""
    value = config.get("user_token")
    if value is None:
        return None
    text = value.get() if hasattr(value, "get") and not isinstance(value, str) else str(value)
    text = _ENV.sub(lambda m: os.environ.get(m.group(1), ""), text)
    return text or None


# -- the workflow ---------------------------------------------------------------------------------


@plugin.on_startup
async def check_config(ctx: Any) -> None:
    missing = [k for k in ("admin_channel", "user_token") if not ctx.config.get(k)]
    if not missing and user_token(ctx.config) is None:
        missing = ["user_token (its environment variable is empty)"]
    if missing:
        log.error("app_approvals.misconfigured", missing=missing)


@plugin.event("app_requested")
async def app_requested(ctx: Context) -> None:
    """Post each app install request to the admin channel, with the commands that answer it."""
    request = ctx.event.raw.get("app_request")
    channel = ctx.config.get("admin_channel")
    if not isinstance(request, dict) or not request.get("id"):
        log.warning("app_approvals.bad_request_event", team_id=ctx.team_id)
        return
    if not channel:
        log.error("app_approvals.misconfigured", missing=["admin_channel"])
        return
    app = request.get("app") or {}
    team = request.get("team") or {}
    user = request.get("user") or {}
    scopes = [s.get("name", "?") for s in request.get("scopes") or [] if isinstance(s, dict)]
    await ctx.store.set(
        f"request:{request['id']}",
        {"app_id": app.get("id"), "app_name": app.get("name"), "team_id": team.get("id")},
        ttl=REQUEST_TTL,
    )
    p = ctx.command_prefix
    where = f"team {team.get('id')}" if team.get("id") else "org"
    lines = [
        f"*App request* `{request['id']}`: <@{user.get('id', '?')}> asks to install "
        f"*{app.get('name') or 'an app'}* (`{app.get('id', '?')}`) on "
        f"{team.get('name') or 'a team'} (`{team.get('id', '?')}`).",
        f"Scopes: {', '.join(f'`{s}`' for s in scopes) or 'none listed'}.",
    ]
    if request.get("message"):
        lines.append(f"Their message: {request['message']}")
    lines.append(
        f"Org admins can answer `{p}approve {request['id']} {where}` or `{p}restrict {request['id']} "
        f"{where}` (`org` instead of `team …` decides for the whole org)."
    )
    text = "\n".join(lines)
    org = (request.get("enterprise") or {}).get("id") or ctx.enterprise_id
    try:
        await ctx.post(channel, text, blocks=request_blocks(text, request["id"], team.get("id"), org))
    except SlackApiError as exc:
        log.error(
            "app_approvals.post_failed", channel=channel, team_id=ctx.team_id, error=exc.response.get("error")
        )


def request_blocks(text: str, request_id: str, team_id: str | None, org: str | None) -> list[dict[str, Any]]:
    """The request's text and its buttons: for the team, and for the whole org where there is one."""
    buttons = []
    for verb, style in (("approve", "primary"), ("restrict", "danger")):
        scopes = ([("team", f"team {team_id}")] if team_id else []) + ([("org", "the org")] if org else [])
        for scope, label in scopes:
            buttons.append(
                {
                    "type": "button",
                    "action_id": f"app_approvals:{verb}:{scope}",
                    "text": {"type": "plain_text", "text": f"{verb.title()} for {label}"},
                    "value": f"{request_id} {'team ' + team_id if scope == 'team' and team_id else 'org'}",
                    **({"style": style} if scope == "team" else {}),
                }
            )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "block_id": "request", "text": {"type": "mrkdwn", "text": text}}
    ]
    if buttons:
        blocks.append({"type": "actions", "block_id": "app_approvals", "elements": buttons})
    return blocks


async def _act(ctx: Context, verb: str, words: list[str]) -> None:
    actor = ctx.event.user
    if actor is None:
        return
    _, answer = await decide(ctx, actor, verb, words)
    await ctx.reply(answer)


async def decide(ctx: Context, actor: str, verb: str, words: list[str]) -> tuple[Action | None, str]:
    """Check ``actor`` is an org admin, then make the ``admin.apps`` call ``verb words`` says.

    Returns the action (None: nothing was done) and the sentence that answers the admin.
    """
    refusal = await _authorize(ctx, actor)
    if refusal is not None:
        log.warning("app_approvals.refused", actor=actor, verb=verb, reason=refusal, team_id=ctx.team_id)
        if refusal == "not_admin":
            return None, "Sorry, only org admins and owners can decide about apps."
        return None, f"Sorry, I couldn't check your permissions ({refusal}), so I did nothing."
    try:
        action = parse(verb, words, ctx.enterprise_id)
    except Refusal as exc:
        return None, str(exc)
    token = user_token(ctx.config)
    if token is None:
        return None, "App decisions aren't set up: `[plugins.app_approvals] user_token` is missing."
    app = await _app_label(ctx, action)
    admin = AsyncWebClient(  # the team client's retry policy: 429s are waited out, within bounds
        token=token,
        base_url=ctx.client.base_url,
        session=ctx.client.session,
        retry_handlers=ctx.client.retry_handlers,
    )
    call = {
        "approve": admin.admin_apps_approve,
        "restrict": admin.admin_apps_restrict,
        "clear": admin.admin_apps_clearResolution,
        "uninstall": admin.admin_apps_uninstall,
    }[verb]
    where = {"actor": actor, "verb": verb, "app_id": action.app_id, "request_id": action.request_id}
    try:
        await call(**action.args)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
        log.warning("app_approvals.failed", error=error, **where)
        text = explain(error, app=app, app_id=action.app_id or "<app id>", where=action.where)
        return None, f"I couldn't {verb} {app}: {text}"
    log.info("app_approvals.done", scope=action.where, **where)
    return action, f"Done: {DONE[verb]} {app} for {action.where}, as <@{actor}> asked."


@plugin.action(re.compile(r"app_approvals:(approve|restrict):(team|org)"))
async def clicked(ctx: InteractiveContext, value: str, action: dict[str, Any]) -> None:
    """A button of a posted request: decided as the command would be; the message shows the outcome."""
    await ctx.ack()
    actor = ctx.user_id
    if actor is None:
        return
    verb = str(action.get("action_id", "")).split(":")[1]
    done, answer = await decide(ctx, actor, verb, value.split())
    if done is None:  # refused, or Slack said no: only the clicker sees why
        await ctx.respond(answer)
        return
    when = int(time.time())
    shown = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(when))
    stamp = f"<!date^{when}^{{date_short_pretty}} at {{time}}|{shown}>"  # in the reader's time zone
    mark = "✅" if verb == "approve" else "⛔"
    label = await _app_label(ctx, done)
    outcome = f"{mark} {DONE[verb].capitalize()} {label} for {done.where}, by <@{actor}> on {stamp}."
    original = next(
        (b for b in (ctx.interaction.message or {}).get("blocks") or [] if b.get("block_id") == "request"),
        None,
    )
    blocks = [original] if original else []
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": outcome}]})
    await ctx.update(outcome, blocks=blocks)


async def _authorize(ctx: Context, actor: str) -> str | None:
    """None if ``actor`` is an org admin or owner right now; else why not. Asked afresh each time."""
    try:
        person = await ctx.user(actor, fresh=True)
    except UserNotFound:
        return "not_admin"
    except SlackApiError as exc:
        return f"Slack said `{exc.response.get('error')}`"
    if person.deleted or person.is_bot or person.is_restricted or not person.is_org_admin:
        return "not_admin"
    if ctx.enterprise_id and person.enterprise_id and person.enterprise_id != ctx.enterprise_id:
        return "not_admin"  # an admin of another org, in a channel shared with ours
    return None


async def _app_label(ctx: Context, action: Action) -> str:
    if action.request_id:
        known = await ctx.store.get(f"request:{action.request_id}") or {}
        name = known.get("app_name") if isinstance(known, dict) else None
        return f"{name} (request {action.request_id})" if name else f"request {action.request_id}"
    return f"app {action.app_id}"


@plugin.command("approve", usage="approve <app or request id> (team <team id> | org)")
async def approve(ctx: Context, args: list[str]) -> None:
    """approve <app or request id> (team <T…> | org): let an app be installed (org admins only)."""
    await _act(ctx, "approve", args)


@plugin.command("restrict", usage="restrict <app or request id> (team <team id> | org)")
async def restrict(ctx: Context, args: list[str]) -> None:
    """restrict <app or request id> (team <T…> | org): keep an app out (org admins only)."""
    await _act(ctx, "restrict", args)


@plugin.command("clear", usage="clear <app id> (team <team id> | org)")
async def clear(ctx: Context, args: list[str]) -> None:
    """clear <app id> (team <T…> | org): undo an approval or restriction (org admins only)."""
    await _act(ctx, "clear", args)


@plugin.command("uninstall", usage="uninstall <app id> (team <team id>[,<team id>…] | org)")
async def uninstall(ctx: Context, args: list[str]) -> None:
    """uninstall <app id> (team <T…>[,<T…>] | org): remove an app (org admins only)."""
    await _act(ctx, "uninstall", args)
