"""A switch in front of Redis: a loopback TCP relay the page can turn off ("stop Redis") and on.

The playground's runtime talks to Redis through the relay. Turning it off closes the listener and
cuts every relayed connection, which the runtime sees exactly as a Redis server going away
(connections reset, new ones refused); turning it on listens again on the same port. The user's
Redis server itself, which other programs may share, is never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from gridbot.store.connect import parse
from gridbot.tasks import cancel_and_wait

CHUNK = 65_536


def relayable(url: str) -> tuple[str, int] | str:
    """The (host, port) of a plain ``redis://`` server URL, or why the switch cannot relay it."""
    try:
        target = parse(url)
    except ValueError as exc:
        return str(exc)
    parts = urlsplit(url)
    if target.kind != "server" or parts.scheme.lower() != "redis" or not parts.hostname:
        return "stopping Redis needs a plain redis://host:port URL (no TLS, Cluster, Sentinel or socket)"
    return parts.hostname, parts.port or 6379


def through(url: str, port: int, host: str = "127.0.0.1") -> str:
    """``url`` with its host and port replaced by the relay's (credentials, db and query kept)."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{auth}@{host}:{port}" if auth else f"{host}:{port}").geturl()


class RedisSwitch:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self._upstream = upstream
        self._host = host
        self._port = 0
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self._port

    @property
    def on(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again): on a free port the first time, on the same port after that."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the relayed ones, as a dead server would."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await cancel_and_wait(list(self._relays))
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self._upstream)
            down = asyncio.create_task(_pump(reader, upstream), name="playground:redis-relay-up")
            up = asyncio.create_task(_pump(up_reader, writer), name="playground:redis-relay-down")
            try:
                await asyncio.wait([down, up], return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait([down, up])
        except OSError:
            pass  # upstream refused: the client sees its connection closed
        except asyncio.CancelledError:
            # stop(): end quietly. asyncio's stream server asks this task for its exception when
            # it ends, and a cancelled task answers that with a traceback on the loop's log.
            pass
        finally:
            self._relays.discard(task)
            for w in (writer, upstream):
                if w is not None:
                    w.transport.abort()  # a reset, not a polite close: the server "died"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
