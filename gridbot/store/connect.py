"""From a ``redis.url`` to a redis-py client: one server, a Redis Cluster, or a Sentinel-managed master.

:func:`parse` reads the URL (no I/O, so a bad URL fails at startup with the config key in the
message); :func:`connect` builds the client, which connects lazily on its first command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

Client = aioredis.Redis | RedisCluster
_TIMEOUTS: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, "decode_responses": True}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a ``redis.url`` points. Secrets stay out of ``repr`` (it may be logged)."""

    kind: Literal["server", "cluster", "sentinel"]
    # server: the URL for redis-py, minus gridbot's own ``cluster`` flag
    url: str = field(default="", repr=False)
    nodes: tuple[tuple[str, int], ...] = ()  # cluster: any nodes; sentinel: the sentinels
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    service: str = ""  # sentinel: the monitored master's name
    db: int = 0
    sentinel_password: str | None = field(default=None, repr=False)


def _nodes(netloc: str, default_port: int) -> tuple[tuple[tuple[str, int], ...], str | None, str | None]:
    """``user:pass@h1:p1,h2:p2`` -> nodes, username, password (percent-decoded)."""
    auth, _, hosts = netloc.rpartition("@")
    user, _, password = auth.partition(":")
    nodes = []
    for item in filter(None, hosts.split(",")):
        host, sep, port = item.rpartition(":")
        if not sep or "]" in port:  # no port: "host" or "[v6 address]"
            host, port = item, ""
        if port and not port.isdigit():
            raise ValueError(f"redis.url: {item!r} is not host[:port]")
        nodes.append((host.strip("[]") or "127.0.0.1", int(port) if port else default_port))
    return tuple(nodes), unquote(user) or None, unquote(password) or None


def parse(url: str) -> Target:
    """Read a standalone, Cluster or Sentinel URL (see :meth:`RedisStore.from_url`).

    Raises ValueError naming ``redis.url`` when the URL cannot work.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query))
    flag = query.pop("cluster", "").lower() in ("1", "true", "yes")
    tls = scheme.startswith("rediss")
    if scheme in ("redis+cluster", "rediss+cluster") or (flag and scheme in ("redis", "rediss")):
        nodes, user, password = _nodes(parts.netloc, 6379)
        if not nodes:
            raise ValueError("redis.url: a cluster URL needs at least one host:port")
        return Target("cluster", nodes=nodes, username=user, password=password, tls=tls)
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        nodes, user, password = _nodes(parts.netloc, 26379)
        path = [p for p in parts.path.split("/") if p]
        if not nodes or not path:
            raise ValueError("redis.url: a sentinel URL is redis+sentinel://host:port[,host:port]/service")
        return Target(
            "sentinel",
            nodes=nodes,
            username=user,
            password=password,
            tls=tls,
            service=path[0],
            db=int(path[1]) if len(path) > 1 else 0,
            sentinel_password=query.get("sentinel_password"),
        )
    # redis-py would hand an unknown query argument to every connection (a TypeError on the
    # first command), so gridbot's own flag is taken out of the URL.
    rest = "&".join(p for p in parts.query.split("&") if p.partition("=")[0] != "cluster")
    return Target("server", url=url if rest == parts.query else parts._replace(query=rest).geturl())


def connect(url: str) -> Client:
    """The redis-py client for ``url``; it connects on its first command."""
    target = parse(url)
    if target.kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],
            username=target.username,
            password=target.password,
            ssl=target.tls,
            max_connections=64,
            # a dead master: retry while the replica is promoted and the slot map refreshed
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=8),
            **_TIMEOUTS,
        )
    if target.kind == "sentinel":
        secret = target.sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={"password": secret, **_TIMEOUTS} if secret else _TIMEOUTS,
            **_TIMEOUTS,
        )
        master: aioredis.Redis = sentinel.master_for(
            target.service,
            db=target.db,
            username=target.username,
            password=target.password,
            ssl=target.tls,
            health_check_interval=30,
            max_connections=64,
        )
        return master
    # redis-py's default pool raises once all its connections are busy; this one waits.
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url, health_check_interval=30, max_connections=64, timeout=10, **_TIMEOUTS
    )
    return aioredis.Redis(connection_pool=pool)
