"""Reading ``[oauth]``: the OAuth install flow, how installed teams are served, token rotation.

Every mistake is one line naming its key (``oauth.client_secret: required``), like the rest of
the config; the client secret and tokens never appear in one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from gridbot.config.model import OAuthConfig, TeamConfig
from gridbot.secrets import Secret

T = TypeVar("T")


class _Reader(Protocol):
    """What this section needs of :mod:`gridbot.config.read`'s reader (its key-path errors)."""

    problems: list[str]

    def table(self, raw: Any, path: str, allowed: set[str]) -> dict[str, Any]: ...
    def get(self, tbl: Mapping[str, Any], key: str, path: str, kind: type[T], default: T) -> T: ...
    def check(self, ok: bool, path: str, message: str) -> None: ...


KEYS = frozenset(OAuthConfig.__dataclass_fields__)


def read_oauth(
    r: _Reader, raw: Any, teams: tuple[TeamConfig, ...], events_port: int | None
) -> OAuthConfig | None:
    """``[oauth]`` as an :class:`OAuthConfig`, or None when the section is absent."""
    if raw is None:
        return None
    tbl = r.table(raw, "oauth", set(KEYS))
    d = "oauth"

    def text(key: str, default: str = "") -> str:
        return r.get(tbl, key, d, str, default)

    client_id = text("client_id")
    r.check(bool(client_id), "oauth.client_id", "required (Basic Information in the app's settings)")
    secret = text("client_secret")
    r.check(bool(secret), "oauth.client_secret", "required, usually ${SLACK_CLIENT_SECRET}")
    scopes = _scopes(r, tbl, "scopes", required=True)
    redirect = text("redirect_url")
    r.check(
        redirect.startswith(("https://", "http://localhost", "http://127.0.0.1")),
        "oauth.redirect_url",
        "required: the https URL registered as the app's redirect URL",
    )
    transport = text("transport", "socket_mode")
    app = text("app_token")
    signing = text("signing_secret")
    connections = r.get(tbl, "connections", d, int, 1)
    if transport == "socket_mode":
        need = 'an app-level token (xapp-) is required when transport = "socket_mode"'
        r.check(app.startswith("xapp-"), "oauth.app_token", need)
        r.check(not signing, "oauth.signing_secret", 'only used when transport = "http"')
        r.check(1 <= connections <= 10, "oauth.connections", "must be between 1 and 10")
        clash = next((t for t in teams if t.app_token is not None and t.app_token.get() == app), None)
        r.check(
            clash is None or clash.connections == connections,
            "oauth.connections",
            "a [[teams]] entry shares this app token with another connections value",
        )
    elif transport == "http":
        r.check(bool(signing), "oauth.signing_secret", 'required when transport = "http"')
        r.check(not app, "oauth.app_token", 'only used when transport = "socket_mode"')
        r.check(events_port is not None, "events.port", 'required when oauth.transport = "http"')
    else:
        r.problems.append('oauth.transport: expected "socket_mode" or "http" (OAuth apps cannot use RTM)')
        transport = "socket_mode"
    port = r.get(tbl, "port", d, int, -1)
    r.check(port == -1 or 0 <= port <= 65535, "oauth.port", "must be between 0 and 65535")
    install_path = text("install_path", "/slack/install")
    r.check(install_path.startswith("/"), "oauth.install_path", "a path starting with /")
    floats: dict[str, float] = {}
    for key in ("refresh_ahead", "watch_interval", "state_ttl"):
        default = getattr(OAuthConfig, key)
        floats[key] = r.get(tbl, key, d, float, default)
        r.check(floats[key] > 0, f"oauth.{key}", "must be greater than 0")
    return OAuthConfig(
        client_id=client_id,
        client_secret=Secret(secret),
        scopes=scopes,
        redirect_url=redirect,
        transport=transport,  # type: ignore[arg-type]  # checked above
        app_token=Secret(app) if app else None,
        signing_secret=Secret(signing) if signing else None,
        connections=connections,
        user_scopes=_scopes(r, tbl, "user_scopes"),
        install_path=install_path,
        host=text("host", "127.0.0.1"),
        port=None if port == -1 else port,
        token_rotation=r.get(tbl, "token_rotation", d, bool, False),
        **floats,
    )


def _scopes(r: _Reader, tbl: dict[str, Any], key: str, *, required: bool = False) -> tuple[str, ...]:
    value = r.get(tbl, key, "oauth", list, [])
    ok = all(isinstance(s, str) and s and "," not in s and " " not in s for s in value)
    if not ok:
        example = '["chat:write", "channels:history"]'
        r.problems.append(f"oauth.{key}: expected a list of scope names, e.g. {example}")
    elif required and not value and tbl.get(key, []) == []:
        r.problems.append(f'oauth.{key}: required: the bot scopes to ask for, e.g. ["chat:write"]')
    return tuple(str(s) for s in value) if ok else ()
