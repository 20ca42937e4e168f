"""Tokens and Redis passwords never reach an output channel, over every kind of Redis URL.

One runtime per access mode (password, ACL user, TLS with an ACL user) serves the simulator
end to end against a private ``redis-server``; then every channel an operator or attacker could
read is searched for the secrets used: log lines at debug level, reprs of the config, teams,
runtime and store, exception messages (wrong password, connection refused), ``/metrics``,
``/status``, ``/readyz``, ``gridbot status``, ``gridbot check-config``, and everything the run
wrote to Redis (key names carry ids only; values carry no token).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from gridtest import SHARED, T1, T2, USERS, connected, log_lines, settled, wait_until
from reliability.redis_servers import RedisServer, RedisServers

from gridbot import cli
from gridbot.config import ConfigError, HttpConfig, load, parse
from gridbot.runtime import Runtime
from gridbot.store import RedisStore, StoreUnavailable
from gridbot.testing import GridSimulator

PASSWORD = "Pa55/w0rd@gridbot"  # needs percent-encoding in a URL: both forms must stay hidden
ENCODED = "Pa55%2Fw0rd%40gridbot"
TOKENS = ("xoxb-sim-T0TEAM001", "xoxb-sim-T0TEAM002", "xapp-sim-A0GRIDBOT1")
SECRETS = (PASSWORD, ENCODED, *TOKENS)
USER = "gridbot"
ACL = f"{USER} on >{PASSWORD} ~* &* +@all"


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=gridbot-test-ca",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "1", "-out", str(cert), "-extfile", str(ext))  # fmt: skip
    return cert, key, ca


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Every log line of the test, at debug level, through the real (redacting) pipeline."""
    with log_lines("debug") as stream:
        yield stream


def start_redis(
    mode: str, servers: RedisServers, tls: tuple[Path, Path, Path] | None
) -> tuple[RedisServer, str]:
    if mode == "password":
        server = servers.start(password=PASSWORD)
        return server, server.url()
    users = ("default off", ACL)  # the default user is off: only the ACL user gets in
    server = servers.start(password=PASSWORD, users=users, tls=tls if mode == "tls" else None)
    return server, server.url(user=USER)


def write_config(path: Path, sim: GridSimulator, redis_url: str) -> Path:
    path.write_text(
        f"""
[slack]
api_url = "{sim.api_url}"

[redis]
url = "{redis_url}"
key_prefix = "sec"

[[teams]]
transport = "rtm"
bot_token = "{TOKENS[0]}"

[[teams]]
transport = "socket_mode"
bot_token = "{TOKENS[1]}"
app_token = "{TOKENS[2]}"

[http]
port = 0

[runtime]
standby_grace = 0.5
lease_ttl = 3.0
shutdown_timeout = 3.0
"""
    )
    path.chmod(0o600)
    return path


async def everything_in_redis(url: str) -> tuple[list[str], str]:
    """Every key name, and every value of every type, as text."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    names, values = [], []
    try:
        async for key in client.scan_iter(count=1000):
            names.append(key)
            kind = await client.type(key)
            if kind == "string":
                values.append(await client.get(key))
            elif kind == "hash":
                values.append(json.dumps(await client.hgetall(key)))
            elif kind == "list":
                values.append(json.dumps(await client.lrange(key, 0, -1)))
            elif kind == "set":
                values.append(json.dumps(sorted(await client.smembers(key))))
            elif kind == "zset":
                values.append(json.dumps(await client.zrange(key, 0, -1, withscores=True)))
            else:
                values.append(json.dumps(await client.execute_command("DUMP", key), default=repr))
    finally:
        await client.aclose()
    return names, "\n".join(str(v) for v in values)


async def http_get(port: int, path: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return await resp.text()


@pytest.mark.parametrize("mode", ["password", "acl", "tls"])
async def test_every_output_channel_is_free_of_tokens_and_the_redis_password(
    mode: str,
    redis_servers: RedisServers,
    tls_files: tuple[Path, Path, Path],
    log_stream: io.StringIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, url = start_redis(mode, redis_servers, tls_files)
    assert url.startswith("rediss://" if mode == "tls" else "redis://") and ENCODED in url
    channels: dict[str, str] = {}
    async with GridSimulator(seed=4) as sim:
        path = write_config(tmp_path / "gridbot.toml", sim, url)
        config = load(path)
        async with Runtime(config) as rt:
            await connected(rt, sim, [T1, T2])
            for n in range(4):
                await sim.post_message(user=list(USERS.values())[n % 3], channel=SHARED, text=f"echo s{n}")
            await wait_until(lambda: len(sim.posted) >= 4, 15, "answers over this Redis")
            await settled(rt)
            assert sorted(p.text for p in sim.posted) == [f"s{n}" for n in range(4)]  # it works, once
            assert rt.http is not None and rt.http.host == "127.0.0.1"
            for route in ("/metrics", "/status", "/readyz", "/healthz"):
                channels[route] = await http_get(rt.http.port, route)
            for args in (["status"], ["status", "--json"], ["elections", "list"]):
                # the CLI runs its own event loop, as it does in a shell
                assert await asyncio.to_thread(cli.main, [*args, "--config", str(path)]) == 0
            channels["reprs"] = "\n".join(
                repr(x) for x in (config, config.redis, config.teams, rt, rt.store, rt.supervisor)
            )
            channels["team reprs"] = "\n".join(
                repr(t) for t in (rt.supervisor.teams if rt.supervisor else [])
            )
            names, values = await everything_in_redis(server.url(user=None if mode == "password" else USER))
            channels["redis"] = "\n".join(names) + "\n" + values
    assert cli.main(["check-config", str(path)]) == 0
    printed = capsys.readouterr()
    channels["cli"] = printed.out + printed.err
    channels["logs"] = log_stream.getvalue()

    # failures speak without the password: a wrong one, and a port with nobody listening
    errors = []
    for bad in (url.replace(ENCODED, "wrong"), url.replace(f":{server.port}/", ":1/")):
        store = RedisStore.from_url(bad.replace("wrong", ENCODED) if ":1/" in bad else bad, key_prefix="sec")
        with pytest.raises(StoreUnavailable) as info:
            await store.ping()
        errors.append(f"{info.value!s} {info.value!r}")
        await store.close()
    with pytest.raises(ConfigError) as bad_config:
        parse({"redis": {"url": f"http://{USER}:{PASSWORD}@localhost/0"}}, {})
    errors.append(str(bad_config.value))
    channels["errors"] = "\n".join(errors)

    assert "store.unavailable" not in channels["logs"]  # the run itself never lost its store
    assert "gridbot.started" in channels["logs"] and "sec:" in "\n".join(names)
    for name, text in channels.items():
        assert text, f"{name}: nothing captured: the search would prove nothing"
        assert leaks(text) == [], f"{name} shows a secret"
    for key in names:
        assert key.startswith("sec:") and "xox" not in key and "xapp" not in key, key


def test_the_http_endpoint_binds_loopback_by_default() -> None:
    assert HttpConfig().host == "127.0.0.1"
    assert parse({"http": {"port": 8080}}, {}).http.host == "127.0.0.1"


def test_check_config_warns_about_a_file_others_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gridbot.toml"
    path.write_text(f'[[teams]]\ntransport = "rtm"\nbot_token = "{TOKENS[0]}"\n')
    path.chmod(0o644)
    assert cli.main(["check-config", str(path)]) == 0
    out = capsys.readouterr()
    assert "readable by other users" in out.err and "chmod 600" in out.err
    assert leaks(out.out + out.err) == []
    path.chmod(0o600)
    assert cli.main(["check-config", str(path)]) == 0
    assert "readable by other users" not in capsys.readouterr().err
