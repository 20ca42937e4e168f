"""The operator's reads of a running deployment, and the election pins it may write.

With Redis, the status documents, team heartbeats and elections are read from the store directly;
with the in-memory store they live inside the daemon, so its ``/status`` endpoint is asked.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from gridbot.config import Config, connection_key
from gridbot.status.snapshot import election_row, election_rows
from gridbot.store import Store


class StatusUnavailable(Exception):
    """The CLI has no way to read the daemon's state (said in plain words)."""


def _open_store(config: Config) -> Store:
    # Imported here: gridbot.runtime builds every stage of the daemon; the CLI only needs a store.
    from gridbot.runtime import make_store

    return make_store(config)


async def _members(store: Store) -> list[str]:
    """The process registry's members, where the store keeps one (a single-process fake does not)."""
    try:
        return sorted(await store.processes())
    except NotImplementedError:
        return []


async def _from_redis(config: Config) -> dict[str, Any]:
    store = _open_store(config)
    try:
        docs = await store.statuses()
        elections = await store.elections()
        team_ids = sorted({t["team_id"] for d in docs.values() for t in d.get("teams", []) if t["team_id"]})
        alive = await store.alive(team_ids)
        store_members = await _members(store)
    finally:
        await store.close()
    for instance in store_members:  # a member whose first status document is not written yet
        docs.setdefault(instance, {"instance": instance, "teams": [], "note": "registered, no status yet"})
    processes = sorted(docs.values(), key=lambda d: str(d.get("instance")))
    for doc in processes:
        for team in doc.get("teams", []):
            team["heartbeat"] = team["team_id"] in alive
    return {"source": "redis", "processes": processes, "elections": election_rows(elections)}


async def _from_http(config: Config) -> dict[str, Any]:
    host = "127.0.0.1" if config.http.host in ("0.0.0.0", "::", "") else config.http.host
    url = f"http://{host}:{config.http.port}/status"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            data: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StatusUnavailable(
            f"the daemon does not answer on {url} ({type(exc).__name__}); with the in-memory store "
            "its state lives only inside the running process"
        ) from None
    data["source"] = "http"
    return data


def _unserved(config: Config, processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configured teams whose connection no live process reports (it died, or never ran)."""
    reported = {t.get("connection") for d in processes for t in d.get("teams", [])}
    return [
        {"config_index": i, "name": t.name, "transport": t.transport, "connection": key}
        for i, t in enumerate(config.teams)
        if (key := connection_key(t)) not in reported
    ]


async def gather(config: Config) -> dict[str, Any]:
    """Everything ``gridbot status`` shows, as one JSON-able document."""
    if config.redis.url is not None:
        data = await _from_redis(config)
    elif config.http.port is not None:
        data = await _from_http(config)
    else:
        raise StatusUnavailable(
            "this config uses the in-memory store, whose state lives only inside the daemon process; "
            "set [http] port in the config (and restart the daemon) so that `gridbot status` can ask it"
        )
    data["unserved"] = _unserved(config, data["processes"])
    return data


async def elections(config: Config, action: str, channel: str | None, team: str | None) -> dict[str, Any]:
    """``gridbot elections``: list them, pin ``channel`` to ``team`` (set), or forget one (clear)."""
    if config.redis.url is None:
        if action != "list":
            raise StatusUnavailable(
                "pinning needs the shared store: with the in-memory store the elections live inside the "
                "daemon process (configure [redis] url)"
            )
        data = await gather(config)
        return {"elections": data["elections"]}
    store = _open_store(config)
    try:
        result: dict[str, Any] = {}
        if action == "set":
            assert channel is not None and team is not None
            statuses = await store.statuses()
            served = {t["team_id"] for d in statuses.values() for t in d.get("teams", [])}
            if team not in served and not await store.alive([team]):
                result["warning"] = (
                    f"no live process serves {team} (no status document, no heartbeat): a standby "
                    "will answer its messages and move the election off the pin"
                )
            result["pinned"] = election_row(channel, await store.pin(channel, team))
        elif action == "clear":
            assert channel is not None
            result["cleared"] = await store.clear(channel)
            result["channel"] = channel
        result["elections"] = election_rows(await store.elections())
        return result
    finally:
        await store.close()
