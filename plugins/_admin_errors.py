"""The errors of Slack's admin.apps methods, in words an org admin can act on (app_approvals)."""

from __future__ import annotations

from collections.abc import Mapping

MAX_UNINSTALL_TEAMS = 100

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


def explain(error: str, *, app: str, app_id: str, where: str) -> str:
    """A plain-language sentence for a Slack error code."""
    template = ERRORS.get(error)
    if template is None:
        return f"Slack refused with `{error}`, which I don't know how to explain. Nothing was changed."
    return template.format(app=app, app_id=app_id, where=where)
