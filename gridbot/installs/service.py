"""``[oauth]`` in a running gridbot: the installation store, its watcher and rotator, the install
routes. The runtime builds one :class:`InstallService` when the config has ``[oauth]``.

The store is the deployment's Redis (``[redis] url``, the same key prefix) or, without one, an
in-memory store (one process: installs are lost on restart). The install routes
(``[oauth] port``) are their own listener, apart from the ops endpoint and the Events API: put
them behind TLS (README, "The OAuth setup").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urljoin

from aiohttp import web

from gridbot.config import Config, OAuthConfig
from gridbot.installs.live import LiveInstalls, Served
from gridbot.installs.oauth import InstallFlow, MemoryStates, OAuthSettings, RedisStates, States
from gridbot.installs.org import lister
from gridbot.installs.redis import RedisInstallStore
from gridbot.installs.rotation import Rotator, oauth_client
from gridbot.installs.store import InstallStore, MemoryInstallStore
from gridbot.logs import get_logger
from gridbot.store.connect import connect
from gridbot.store.keys import Keys

log = get_logger("gridbot.installs")


def authorize_url(api_url: str) -> str:
    """Slack's authorize page beside its Web API (``https://slack.com/api/`` ->
    ``https://slack.com/oauth/v2/authorize``), so a simulator's ``api_url`` brings its own."""
    return urljoin(api_url, "../oauth/v2/authorize")


def make_install_store(config: Config) -> InstallStore:
    if config.redis.url is None:
        return MemoryInstallStore()
    return RedisInstallStore.from_url(config.redis.url.get(), key_prefix=config.redis.key_prefix)


class InstallService:
    """The store, the live installs (watch, rotate) and the install routes of one process."""

    def __init__(
        self,
        config: Config,
        oauth: OAuthConfig,
        supervisor: Served,
        *,
        instance_id: str,
        store: InstallStore | None = None,
        clock: Callable[[], float] = time.time,
        rate: float = 1.0,
    ) -> None:
        """``clock`` (Unix seconds) judges token expiry; ``rate`` is how fast it runs against real
        time (tests run an hour of rotation in a minute: ``rate=60``)."""
        self.oauth = oauth
        self.store = store or make_install_store(config)
        self._owns_store = store is None
        rotator = None
        if oauth.token_rotation:
            rotator = Rotator(
                self.store,
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                client=oauth_client(config.slack.api_url),
                holder=instance_id,
                ahead=oauth.refresh_ahead,
                clock=clock,
            )
        interval = min(60.0, oauth.refresh_ahead / 4) / rate
        self.live = LiveInstalls(
            self.store,
            oauth,
            supervisor,
            rotator=rotator,
            rotate_interval=interval,
            listing=lister(oauth_client(config.slack.api_url)),
            # auth.teams.list is Tier 2: every 30 s per process at most (a second in the tests)
            relist_interval=max(1.0, 30 * oauth.watch_interval),
        )
        self._flow: InstallFlow | None = None
        self._states: States | None = None
        if oauth.port is not None:
            url = config.redis.url
            self._states = (
                RedisStates(connect(url.get()), keys=Keys(config.redis.key_prefix), ttl=oauth.state_ttl)
                if url is not None
                else MemoryStates(oauth.state_ttl)
            )
            settings = OAuthSettings(
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                redirect_uri=oauth.redirect_url,
                scopes=oauth.scopes,
                user_scopes=oauth.user_scopes,
                install_path=oauth.install_path,
                redirect_path=oauth.redirect_path,
                authorize_url=authorize_url(config.slack.api_url),
                state_ttl=oauth.state_ttl,
            )
            self._flow = InstallFlow(settings, self.store, self._states, oauth_client(config.slack.api_url))
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start_routes(self) -> None:
        """The install page and the redirect endpoint, on ``[oauth] host:port``."""
        if self._flow is None:
            return
        app = web.Application()
        self._flow.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.oauth.host, self.oauth.port).start()
        self.port = int(self._runner.addresses[0][1])
        path = self.oauth.install_path
        log.info("oauth.listening", host=self.oauth.host, port=self.port, install_path=path)

    def start(self) -> None:
        """Serve the stored installations (after the supervisor started: ownership decides)."""
        self.live.start()

    async def stop(self) -> None:
        """No install page, no installation gained or lost, no rotation from here on."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.live.stop()

    async def close(self) -> None:
        """Last: handlers still draining may refresh an expired token through the store."""
        if isinstance(self._states, RedisStates):
            await self._states.close()
        if self._owns_store:
            await self.store.close()
