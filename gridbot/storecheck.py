"""The start-up store check: a store that does not answer is said clearly, with its reason, and
said again at a calm interval until it answers.

With Redis unreachable at start-up (not running, a wrong password, TLS on one side only, a host
name that does not resolve) no connection can be owned and no heartbeat renewed, so no team can
connect. Before this check the only trace was a ``status.publish_failed`` warning every 5 s; now
one ``store.unreachable`` error says why and what gridbot does (it waits, pinging every 2 s, and
starts the teams once the store answers), repeated every 30 s or when the reason changes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from redis.exceptions import AuthenticationError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gridbot.logs import get_logger
from gridbot.secrets import redact
from gridbot.store import Store, StoreUnavailable

log = get_logger("gridbot.store")

RETRY_EVERY = 2.0  # seconds between pings while the store does not answer
REPORT_EVERY = 30.0  # seconds between store.unreachable lines while the reason stays the same
PING_TIMEOUT = 6.0  # one ping's bound: above the client's own 5 s connect and socket timeouts

# What an operator can do about each reason.
HINTS = {
    "refused": "nothing listens at that address: is Redis running, on that host and port?",
    "auth_failed": "Redis refused the credentials: check the user and password in redis.url",
    "tls": "the TLS handshake failed: check rediss:// against the server (its CA: ?ssl_ca_certs=)",
    "unknown_host": "the host name in redis.url does not resolve",
    "timeout": "no answer in time: a firewall, a wrong port, or TLS on one side only (rediss://)",
    "unreachable": "the store does not answer",
}
_TEXT = (  # when the exception chain holds no telling type: redis-py's own wording
    ("auth_failed", ("WRONGPASS", "NOAUTH", "invalid username-password", "Authentication required")),
    ("tls", ("SSL", "certificate")),
    ("unknown_host", ("Name or service not known", "nodename nor servname", "name resolution")),
    ("refused", ("Connection refused", "Error 111 ", "Connect call failed")),
    ("timeout", ("Timeout", "timed out")),
)


def reason(exc: BaseException) -> str:
    """Why the store did not answer: ``refused``, ``auth_failed``, ``tls``, ``unknown_host``,
    ``timeout`` or ``unreachable``, read from the exception and the ones it was raised from."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for kinds, name in (
        ((AuthenticationError,), "auth_failed"),
        ((ssl.SSLError, ssl.CertificateError), "tls"),
        ((socket.gaierror,), "unknown_host"),
        ((ConnectionRefusedError,), "refused"),
    ):
        if any(isinstance(e, kinds) for e in chain):
            return name
    text = " ".join(str(e) for e in chain)
    for name, words in _TEXT:
        if any(w in text for w in words):
            return name
    if any(isinstance(e, TimeoutError | RedisTimeoutError) for e in chain):
        return "timeout"
    return "unreachable"


def location(url: str) -> str:
    """Where a ``redis.url`` points, without what is secret: scheme and hosts, no user, password
    or query (the whole URL is a registered secret, so the log would show only ``[secret]``)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return f"{parts.scheme}://{redact(parts.path)}" if parts.scheme else "the store"
    return f"{parts.scheme}://{redact(parts.netloc.rpartition('@')[2])}"


class StoreCheck:
    """Pings ``store`` until it answers, logging ``store.unreachable`` (error) at once, every
    ``report`` seconds and whenever the reason changes, then ``store.reachable`` (info)."""

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        retry: float = RETRY_EVERY,
        report: float = REPORT_EVERY,
        timeout: float = PING_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self.where = location(url)
        self._retry = retry
        self._report = report
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._said: tuple[str, float] | None = None  # the last reason reported, and when

    async def answers(self) -> bool:
        """One ping; a failure is reported (or not, if it was said less than ``report`` s ago)."""
        try:
            # Bounded: a Cluster client retries a dead node for much longer than one ping.
            async with asyncio.timeout(self._timeout):
                await self._store.ping()
        except StoreUnavailable as exc:
            self._failed(exc)
            return False
        except TimeoutError:
            self._failed(StoreUnavailable(f"timed out: no answer within {self._timeout:g} s"))
            return False
        return True

    async def wait(self) -> None:
        """Ping every ``retry`` seconds until the store answers."""
        while not await self.answers():
            await self._sleep(self._retry)
        log.info("store.reachable", store=self.where, after_s=round(self._clock() - self._started, 1))

    def _failed(self, exc: StoreUnavailable) -> None:
        why, now = reason(exc), self._clock()
        if self._said is not None and self._said[0] == why and now - self._said[1] < self._report:
            return
        self._said = (why, now)
        log.error(
            "store.unreachable",
            store=self.where,
            reason=why,
            error=str(exc),
            hint=HINTS[why],
            action=(
                f"no team connects until the store answers; retrying every {self._retry:g} s, "
                f"reported every {self._report:g} s"
            ),
            waited_s=round(now - self._started, 1),
        )
