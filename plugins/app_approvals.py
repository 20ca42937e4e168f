"""app_approvals: app install requests as a chat workflow for org admins (the admin.apps API).

On ``app_requested`` the request is posted to ``admin_channel``. Org admins and owners answer with
``approve``, ``restrict``, ``clear`` or ``uninstall``, for one team or the whole org. Who may act
is decided from ``users.info`` of the message's author, asked afresh on every request; nothing in
the message text can claim it. The calls use the admin's user token from the config::

    [plugins.app_approvals]
    admin_channel = "C0ADMINS1"
    user_token = "${GRIDBOT_ADMIN_TOKEN}"   # a user token with admin.apps:write
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot import Context, Plugin, UserNotFound, get_logger

plugin = Plugin("app_approvals")
log = get_logger("gridbot.plugins.app_approvals")

REQUEST_TTL = 30 * 24 * 3600.0  # how long a posted request's details are remembered
MAX_UNINSTALL_TEAMS = 100
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

# Every error the admin.apps reference documents for these methods, and the common ones, in words
# an admin can act on. ``{app}`` and ``{where}`` are filled in.
ERRORS: Mapping[str, str] = {
    # approve / restrict / clearResolution / uninstall
    "app_management_app_not_installed_on_org": "the app management app is not installed on the org, "
    "so Slack won't take app decisions through the API yet. An org owner has to install it first.",
    "app_restricted_org_wide": "{app} is restricted for the whole org, so it can't be approved for one "
    "team. Clear the org-wide restriction first (`clear {app_id} org`).",
    "custom_integration_not_allowed_at_enterprise": "{app} is a custom integration, and those can't be "
    "approved or restricted for the whole org: choose a team instead.",
    "feature_not_enabled": "the Admin API isn't enabled for this org, so app decisions have to be made "
    "in the admin dashboard.",
    "invalid_request_id": "there is no app request with that id. Check the id in the request message.",
    "invalid_app_id": "there is no app with that id. Check the A… id.",
    "org_resolution_required": "{app} is certified for the org, so it has to be decided for the whole "
    "org (`org`), not for one team.",
    "invalid_scopes": "some of the scopes in that request don't exist.",
    "not_an_admin": "the token I use for app decisions doesn't belong to an org admin or owner. Ask an "
    "org owner to configure a user token of an org admin.",
    "request_already_resolved": "that request has already been answered.",
    "request_id_or_app_id_is_required": "I need the app id (A…) or the request id (Ar…).",
    "request_id_required_for_custom_integrations": "{app} is a custom integration: use the request id "
    "(Ar…) from the request message instead of the app id.",
    "team_not_found": "Slack doesn't know {where}. Check the team id.",
    "too_many_ids_provided": "give either the app id or the request id, not both.",
    "too_many_teams_provided": "give either one team or the whole org, not both.",
    "no_resolution_found": "there is no decision about {app} for {where} to clear.",
    "restricted_action": "the admin token I use isn't allowed to do that.",
    "app_not_found": "there is no app with that id. Check the A… id.",
    "can_not_uninstall": "{app} can't be uninstalled through the API; remove it in the admin dashboard.",
    "enterprise_not_found": "Slack doesn't know that org id.",
    "must_revoke_access": "{app} was deployed to the whole org, so it can't be uninstalled from single "
    "teams: uninstall it from the org (`org`) instead.",
    "permission_denied": "the admin token I use may not uninstall apps from {where}.",
    "specify_enterprise_or_teams": "say where: one or more teams, or the whole org, not both.",
    "teams_not_found": "Slack doesn't know one of those teams. Check the team ids.",
    "too_many_teams": f"that is too many teams at once (at most {MAX_UNINSTALL_TEAMS}).",
    # errors every Web API method can return
    "access_denied": "Slack denied access to that app or team.",
    "account_inactive": "the admin token I use belongs to a deactivated account. An org owner needs to "
    "configure a new one.",
    "deprecated_endpoint": "Slack has retired this API method; gridbot needs an update.",
    "method_deprecated": "Slack has retired this API method; gridbot needs an update.",
    "ekm_access_denied": "the org's administrators have suspended this action (EKM).",
    "enterprise_is_restricted": "this can't be done from the org level.",
    "invalid_auth": "the admin token I use isn't valid (wrong token, or used from a disallowed address).",
    "is_bot": "app decisions need an admin's user token, not a bot token.",
    "missing_scope": "the admin token I use lacks the `admin.apps:write` scope.",
    "not_allowed_token_type": "app decisions need an admin's user token; the configured token is of "
    "the wrong kind.",
    "not_authed": "no admin token is configured for app decisions.",
    "no_permission": "the admin token I use doesn't have permission for this.",
    "org_login_required": "the workspace is migrating into the org; try again when the migration is over.",
    "team_added_to_org": "the workspace is migrating into the org; try again in a little while.",
    "token_expired": "the admin token I use has expired. An org owner needs to configure a new one.",
    "token_revoked": "the admin token I use was revoked. An org owner needs to configure a new one.",
    "two_factor_setup_required": "the admin account behind my token must set up two-factor "
    "authentication first.",
    "accesslimited": "Slack doesn't allow this method from this network.",
    "fatal_error": "Slack hit a serious error; part of it may have happened. Check the app's status "
    "in the admin dashboard before trying again.",
    "internal_error": "Slack had a temporary problem; part of it may have happened. Check, then try again.",
    "invalid_arg_name": "Slack rejected an argument name; this is a gridbot bug, please report it.",
    "invalid_arguments": "Slack rejected the arguments; check the ids and try again.",
    "invalid_array_arg": "Slack rejected a list argument; this is a gridbot bug, please report it.",
    "invalid_charset": "Slack rejected the request's encoding; this is a gridbot bug, please report it.",
    "invalid_form_data": "Slack rejected the request's form data; this is a gridbot bug, please report it.",
    "invalid_post_type": "Slack rejected the request's type; this is a gridbot bug, please report it.",
    "missing_post_type": "Slack rejected the request's type; this is a gridbot bug, please report it.",
    "ratelimited": "Slack is rate-limiting app decisions; wait a minute and try again.",
    "request_timeout": "the request to Slack timed out; check, then try again.",
    "service_unavailable": "Slack is temporarily unavailable; try again in a few minutes.",
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


def explain(error: str, *, app: str, app_id: str, where: str) -> str:
    """A plain-language sentence for a Slack error code."""
    template = ERRORS.get(error)
    if template is None:
        return f"Slack refused with `{error}`, which I don't know how to explain. Nothing was changed."
    return template.format(app=app, app_id=app_id, where=where)


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
    try:
        await ctx.post(channel, "\n".join(lines))
    except SlackApiError as exc:
        log.error(
            "app_approvals.post_failed", channel=channel, team_id=ctx.team_id, error=exc.response.get("error")
        )


async def _act(ctx: Context, verb: str, words: list[str]) -> None:
    actor = ctx.event.user
    if actor is None:
        return
    refusal = await _authorize(ctx, actor)
    if refusal is not None:
        log.warning("app_approvals.refused", actor=actor, verb=verb, reason=refusal, team_id=ctx.team_id)
        await ctx.reply(
            "Sorry, only org admins and owners can decide about apps."
            if refusal == "not_admin"
            else f"Sorry, I couldn't check your permissions ({refusal}), so I did nothing."
        )
        return
    try:
        action = parse(verb, words, ctx.enterprise_id)
    except Refusal as exc:
        await ctx.reply(str(exc))
        return
    token = user_token(ctx.config)
    if token is None:
        await ctx.reply("App decisions aren't set up: `[plugins.app_approvals] user_token` is missing.")
        return
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
        await ctx.reply(f"I couldn't {verb} {app}: {text}")
        return
    log.info("app_approvals.done", scope=action.where, **where)
    await ctx.reply(f"Done: {DONE[verb]} {app} for {action.where}, as <@{actor}> asked.")


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
