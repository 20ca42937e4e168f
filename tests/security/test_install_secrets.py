"""Installation secrets (bot tokens, refresh tokens, the client secret) stay out of every repr and
error message of the installs package; the pages and log lines are checked in tests/installs."""

from __future__ import annotations

from gridbot.installs import Install, MemoryInstallStore
from gridbot.installs.oauth import InstallFlow, MemoryStates, OAuthSettings
from gridbot.installs.rotation import InstallGone, RotationError, RotationFailed, Rotator
from gridbot.secrets import Secret

BOT, REFRESH, CLIENT = "xoxe.xoxb-1-SECRET-BOT", "xoxe-1-SECRET-REFRESH", "client-secret-0123456789"


def test_no_install_secret_in_a_repr_or_an_error() -> None:
    install = Install(
        enterprise_id="E1", team_id=None, is_enterprise_install=True,
        bot_token=Secret(BOT), refresh_token=Secret(REFRESH),
    )  # fmt: skip
    settings = OAuthSettings(
        client_id="111.222", client_secret=Secret(CLIENT), redirect_uri="https://x/r", scopes=("chat:write",)
    )
    store = MemoryInstallStore()
    texts = [
        repr(install), str(install), repr(settings), repr(InstallFlow(settings, store, MemoryStates())),
        repr(Rotator(store, client_id="111.222", client_secret=Secret(CLIENT))),
        str(RotationFailed(install.id, "invalid_refresh_token")), str(RotationError(install.id, "ratelimited")),
        str(InstallGone(install.id)), repr(install.to_fields().keys()),
    ]  # fmt: skip
    leaked = [t for t in texts if BOT in t or REFRESH in t or CLIENT in t]
    assert leaked == []
    assert "org:E1" in str(RotationFailed(install.id, "invalid_refresh_token"))
