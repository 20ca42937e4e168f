"""Start-up against a store that does not answer (issue 16: the operator's first outage).

Before: a wrong password or a stopped Redis left only a ``status.publish_failed`` warning every
5 s, no team connected and no line said why; ``gridbot demo --redis`` at a dead Redis ended in a
70-line traceback. Now one ``store.unreachable`` error names the reason and what gridbot does,
again every 30 s, the teams start once the store answers, and the demo says it in one line.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import sys
from pathlib import Path

import pytest
from gridtest import T1, T2, connected, grid_config, log_lines, wait_until
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from reliability.redis_servers import RedisServer, RedisServers

from gridbot.runtime import Runtime
from gridbot.store import MemoryStore, StoreUnavailable
from gridbot.storecheck import StoreCheck, location, reason
from gridbot.testing import GridSimulator

PASSWORD = "hunter2-startup-pw"


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def unavailable(cause: BaseException) -> StoreUnavailable:
    """A StoreUnavailable raised from ``cause``, as RedisStore raises it (``from None``)."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from None
    except StoreUnavailable as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "cause,expected",
    [
        (RedisConnectionError("Error 111 connecting to 127.0.0.1:1."), "refused"),
        (AuthenticationError("invalid username-password pair or user is disabled."), "auth_failed"),
        (AuthenticationError("Authentication required."), "auth_failed"),
        (RedisTimeoutError("Timeout connecting to server"), "timeout"),
        (
            RedisConnectionError("Error 1 connecting to localhost:6380. [SSL: CERTIFICATE_VERIFY_FAILED]"),
            "tls",
        ),
        (
            RedisConnectionError("Error -2 connecting to nohost:6379. Name or service not known."),
            "unknown_host",
        ),
        (RedisConnectionError("Connection closed by server."), "unreachable"),
    ],
)
def test_the_reason_is_read_from_redis_pys_words(cause: BaseException, expected: str) -> None:
    assert reason(unavailable(cause)) == expected


@pytest.mark.parametrize(
    "inner,expected",
    [
        (ConnectionRefusedError(111, "Connect call failed"), "refused"),
        (socket.gaierror(-2, "Name or service not known"), "unknown_host"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer"), "tls"),
    ],
)
def test_the_reason_is_read_from_the_exception_a_store_error_was_raised_from(
    inner: BaseException, expected: str
) -> None:
    try:
        raise RedisConnectionError("Error connecting") from inner
    except RedisConnectionError as outer:
        assert reason(unavailable(outer)) == expected


def test_the_location_shown_has_no_user_password_or_query() -> None:
    assert location("redis://gridbot:s3cret@redis.internal:6379/0") == "redis://redis.internal:6379"
    assert location("rediss://:pw@r:6380/0?ssl_ca_certs=/ca.pem") == "rediss://r:6380"
    assert location("redis+sentinel://:pw@s1:26379,s2:26379/mymaster") == "redis+sentinel://s1:26379,s2:26379"


class Unreachable(MemoryStore):
    """A store whose ping fails with each of ``errors`` in turn, then answers."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__()
        self.errors = errors

    async def ping(self) -> None:
        if self.errors:
            raise unavailable(self.errors.pop(0))


async def test_the_error_is_repeated_at_a_calm_interval_and_at_once_when_the_reason_changes() -> None:
    refused, wrong_password = RedisConnectionError("Error 111 connecting"), AuthenticationError("WRONGPASS")
    store = Unreachable([refused] * 40 + [wrong_password] * 3)
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    check = StoreCheck(
        store, "redis://:pw@r:6379/0", retry=2.0, report=30.0, clock=lambda: now[0], sleep=sleep
    )
    with log_lines("info") as stream:
        await check.wait()
    said = [
        (e["event"], e.get("reason"), e.get("waited_s", e.get("after_s"))) for e in lines(stream.getvalue())
    ]
    assert said == [
        ("store.unreachable", "refused", 0.0),
        ("store.unreachable", "refused", 30.0),
        ("store.unreachable", "refused", 60.0),
        ("store.unreachable", "auth_failed", 80.0),  # a new reason is said at once
        ("store.reachable", None, 86.0),
    ]


async def test_a_refused_store_at_start_up_is_one_error_line_and_teams_start_once_it_answers(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path, password=PASSWORD)  # its port chosen, nothing listening yet
    url = server.url()
    try:
        async with GridSimulator(seed=4) as sim:
            config = grid_config(sim, {T1: "rtm", T2: "rtm"}, redis_url=url, key_prefix="startup")
            with log_lines("info") as stream:
                async with Runtime(config) as rt:
                    assert rt.supervisor is not None
                    [line] = [e for e in lines(stream.getvalue()) if e["event"] == "store.unreachable"]
                    assert line["level"] == "error" and line["reason"] == "refused"
                    assert line["store"] == f"redis://127.0.0.1:{server.port}"
                    assert "no team connects until the store answers" in str(line["action"])
                    assert rt.supervisor.teams == []  # nothing started without leases
                    await asyncio.to_thread(server.start)
                    await connected(rt, sim, [T1, T2])
                    await wait_until(lambda: "store.reachable" in stream.getvalue(), what="store.reachable")
            text = stream.getvalue()
    finally:
        server.stop()
    assert PASSWORD not in text
    events = [e["event"] for e in lines(text)]
    assert events.count("store.unreachable") == 1 and "status.publish_failed" not in events
    assert events.index("store.reachable") < events.index("link.connected")


@pytest.mark.parametrize("case", ["auth_failed", "unknown_host"])
async def test_a_wrong_password_or_host_says_so_without_the_secret(
    redis_servers: RedisServers, case: str
) -> None:
    if case == "auth_failed":
        url = redis_servers.start(password=PASSWORD).url(password="not-the-" + PASSWORD)
    else:
        url = f"redis://:{PASSWORD}@no-such-host.invalid:6379/0"
    async with GridSimulator(seed=5) as sim:
        config = grid_config(sim, {T1: "rtm"}, redis_url=url, key_prefix="startup")
        with log_lines("debug") as stream:
            async with Runtime(config):
                pass
    text = stream.getvalue()
    [line] = [e for e in lines(text) if e["event"] == "store.unreachable"]
    assert line["reason"] == case and line["hint"]
    assert PASSWORD not in text


async def gridbot(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gridbot.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_demo_at_a_dead_redis_ends_in_one_line_and_exit_1(tmp_path: Path) -> None:
    dead = RedisServer(tmp_path)  # a free port nobody listens on
    code, out, err = await gridbot("demo", "--redis", dead.url(password=PASSWORD))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"gridbot demo: the store at redis://127.0.0.1:{dead.port} does not answer (refused: nothing listens "
        "at that address: is Redis running, on that host and port?); without --redis the demo uses the "
        "in-memory store"
    ]


async def test_the_demo_answers_every_message_exactly_once() -> None:
    """``make demo``, the first command of the quick start (a few seconds)."""
    code, out, err = await gridbot("demo")
    assert code == 0, out + err
    assert "  exactly once          yes" in out.splitlines()


async def test_a_ping_that_never_answers_is_bounded_and_reported_as_a_timeout() -> None:
    class Silent(MemoryStore):
        async def ping(self) -> None:
            await asyncio.Event().wait()  # a black-holed host, or a Cluster client retrying

    check = StoreCheck(Silent(), "redis+cluster://10.0.0.1:7000", timeout=0.05)
    with log_lines("info") as stream:
        async with asyncio.timeout(30):
            assert await check.answers() is False
    [line] = lines(stream.getvalue())
    assert (line["reason"], line["store"]) == ("timeout", "redis+cluster://10.0.0.1:7000")
