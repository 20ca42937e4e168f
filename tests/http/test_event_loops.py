"""The events listener's hand-written HTTP/1.1 server answers on uvloop as on asyncio's own loop.

uvloop's transports have asyncio's interface but not its base classes: an ``isinstance(transport,
asyncio.Transport)`` check in ``Conn.connection_made`` failed there, the connection was never
registered and no request on it was ever answered (the bench's load hung). These tests run the
listener on each loop the machine has and talk to it over a real socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gridbot.config import EventsConfig
from gridbot.dedup.outcomes import Outcomes
from gridbot.transport.http import EventsReceiver


class _Intake:
    """Nothing is offered by these requests; the receiver only reads ``open`` and ``outcomes``."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.outcomes = Outcomes()

    def offer(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("nothing is offered here")

    def handed_over(self) -> None:
        pass


def _loops() -> list[Any]:
    """asyncio's loop always; uvloop's where it is installed (gridbot does not depend on it: the
    HTTP bench measured no gain, README "Performance"), without a skip line when it is not."""
    loops: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:
        return loops
    return [*loops, pytest.param(uvloop.new_event_loop, id="uvloop")]


async def _two_pipelined_healthz() -> list[dict[str, Any]]:
    receiver = EventsReceiver(EventsConfig(host="127.0.0.1", port=0), _Intake())
    await receiver.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        request = b"GET /healthz HTTP/1.1\r\nHost: gridbot\r\n\r\n"
        writer.write(request + request)  # the second waits in the buffer behind the first
        docs = []
        for _ in range(2):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
            length = int(
                next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))[15:]
            )
            docs.append(orjson.loads(await asyncio.wait_for(reader.readexactly(length), 5)))
        writer.close()
        await writer.wait_closed()
        return docs
    finally:
        await receiver.stop()


@pytest.mark.parametrize("loop_factory", _loops())
def test_listener_answers_keep_alive_requests_on_each_loop(loop_factory: Callable[[], Any]) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        docs = runner.run(_two_pipelined_healthz())
    assert docs == [{"ok": True, "apps": 0, "store_ok": True}] * 2
