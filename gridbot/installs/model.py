"""One installation of the app, and the one rule that names it.

An installation is either a workspace install (named by its team id) or an org-wide install
(``is_enterprise_install``, named by its enterprise id, whatever team id the OAuth answer or the
SDK happened to carry). :func:`install_id` is that rule and :func:`lookup_ids` its reverse, so an
org install saved with a team id is still found by its enterprise id (python-slack-sdk #1639).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation

from gridbot.secrets import Secret

# Installer (user-level) parts of slack_sdk's Installation: kept per installer, beside the bot.
USER_FIELDS = (
    "user_id",
    "user_token",
    "user_scopes",
    "user_refresh_token",
    "user_token_expires_at",
    "incoming_webhook_url",
    "incoming_webhook_channel",
    "incoming_webhook_channel_id",
    "incoming_webhook_configuration_url",
    "enterprise_url",
    "token_type",
    "installed_at",
)
_USER_SECRETS = ("user_token", "user_refresh_token")


def install_id(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool) -> str:
    """The name of an installation: ``org:<enterprise>`` for an org-wide install, else ``team:<team>``.

    A workspace install is named by its team alone, so it is found again after the workspace
    joins an org (its events then carry an enterprise id they did not carry at install time).
    """
    if is_enterprise_install:
        if not enterprise_id:
            raise ValueError("an org-wide installation needs an enterprise_id")
        return f"org:{enterprise_id}"
    if not team_id:
        raise ValueError("a workspace installation needs a team_id")
    return f"team:{team_id}"


def lookup_ids(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> list[str]:
    """The installations that may serve an event from (enterprise, team), best first.

    An event flagged ``is_enterprise_install`` belongs to the org install only. Otherwise the
    workspace's own install wins, and the org install of its enterprise serves a workspace that
    has none (a granted workspace of an org-wide install).
    """
    if is_enterprise_install:
        return [f"org:{enterprise_id}"] if enterprise_id else []
    ids = [f"team:{team_id}"] if team_id else []
    if enterprise_id:
        ids.append(f"org:{enterprise_id}")
    return ids


@dataclass(frozen=True, slots=True)
class Install:
    """A bot installation. Tokens are :class:`Secret`: a repr or log line shows them masked."""

    enterprise_id: str | None
    team_id: str | None
    is_enterprise_install: bool
    bot_token: Secret
    bot_id: str = ""
    bot_user_id: str = ""
    app_id: str | None = None
    enterprise_name: str | None = None
    team_name: str | None = None
    scopes: tuple[str, ...] = ()
    refresh_token: Secret | None = None
    expires_at: int | None = None  # Unix seconds; None: the token does not expire (rotation off)
    installer: str | None = None  # the user id of the latest installer
    installed_at: float = field(default_factory=time.time)
    failed: str = ""  # why this installation stopped working ("" while it works)

    @property
    def id(self) -> str:
        return install_id(self.enterprise_id, self.team_id, self.is_enterprise_install)

    def rotated(self, token: str, refresh_token: str, expires_at: int) -> Install:
        return replace(
            self,
            bot_token=Secret(token),
            refresh_token=Secret(refresh_token),
            expires_at=expires_at,
            failed="",
        )

    # -- Redis hash fields (strings only) -------------------------------------------------------
    def to_fields(self) -> dict[str, str]:
        return {
            "enterprise_id": self.enterprise_id or "",
            "team_id": self.team_id or "",
            "is_enterprise_install": "1" if self.is_enterprise_install else "0",
            "bot_token": self.bot_token.get(),
            "bot_id": self.bot_id,
            "bot_user_id": self.bot_user_id,
            "app_id": self.app_id or "",
            "enterprise_name": self.enterprise_name or "",
            "team_name": self.team_name or "",
            "scopes": ",".join(self.scopes),
            "refresh_token": self.refresh_token.get() if self.refresh_token else "",
            "expires_at": "" if self.expires_at is None else str(self.expires_at),
            "installer": self.installer or "",
            "installed_at": repr(self.installed_at),
            "failed": self.failed,
        }

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> Install:
        return cls(
            enterprise_id=f.get("enterprise_id") or None,
            team_id=f.get("team_id") or None,
            is_enterprise_install=f.get("is_enterprise_install") == "1",
            bot_token=Secret(f["bot_token"]),
            bot_id=f.get("bot_id", ""),
            bot_user_id=f.get("bot_user_id", ""),
            app_id=f.get("app_id") or None,
            enterprise_name=f.get("enterprise_name") or None,
            team_name=f.get("team_name") or None,
            scopes=tuple(filter(None, f.get("scopes", "").split(","))),
            refresh_token=Secret(f["refresh_token"]) if f.get("refresh_token") else None,
            expires_at=int(f["expires_at"]) if f.get("expires_at") else None,
            installer=f.get("installer") or None,
            installed_at=float(f.get("installed_at") or 0.0),
            failed=f.get("failed", ""),
        )

    # -- slack_sdk's models ---------------------------------------------------------------------
    @classmethod
    def from_bot(cls, bot: Bot | Installation, installer: str | None = None) -> Install:
        if not bot.bot_token:
            raise ValueError("an installation without a bot token cannot be stored (bot scopes only)")
        org = bool(bot.is_enterprise_install)
        return cls(
            enterprise_id=bot.enterprise_id,
            # An org-wide install is not a workspace's: a team id it carries is only where it was
            # installed from, and keeping it invites looking it up by that team (#1639).
            team_id=None if org else bot.team_id,
            is_enterprise_install=org,
            bot_token=Secret(bot.bot_token),
            bot_id=bot.bot_id or "",
            bot_user_id=bot.bot_user_id or "",
            app_id=bot.app_id,
            enterprise_name=bot.enterprise_name,
            team_name=None if org else bot.team_name,
            scopes=tuple(bot.bot_scopes or ()),
            refresh_token=Secret(bot.bot_refresh_token) if bot.bot_refresh_token else None,
            expires_at=bot.bot_token_expires_at,
            installer=installer,
            installed_at=bot.installed_at,
        )

    def to_bot(self) -> Bot:
        return Bot(**self._sdk_fields(), installed_at=self.installed_at)

    def to_installation(self, user: dict[str, Any] | None) -> Installation:
        user = dict(user or {})
        user.setdefault("user_id", self.installer or "")
        user.setdefault("installed_at", self.installed_at)
        return Installation(**self._sdk_fields(), **user)

    def _sdk_fields(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "enterprise_id": self.enterprise_id,
            "enterprise_name": self.enterprise_name,
            "team_id": self.team_id,
            "team_name": self.team_name,
            "bot_token": self.bot_token.get(),
            "bot_id": self.bot_id,
            "bot_user_id": self.bot_user_id,
            "bot_scopes": list(self.scopes),
            "bot_refresh_token": self.refresh_token.get() if self.refresh_token else None,
            "bot_token_expires_at": self.expires_at,
            "is_enterprise_install": self.is_enterprise_install,
        }


def user_record(installation: Installation) -> dict[str, Any]:
    """The installer's part of an SDK Installation, as JSON-able values (its secrets registered)."""
    record = {name: getattr(installation, name) for name in USER_FIELDS}
    record["user_scopes"] = ",".join(installation.user_scopes or ())
    for name in _USER_SECRETS:
        if record[name]:
            Secret(record[name])  # registered: the log redaction masks it from now on
    return record
