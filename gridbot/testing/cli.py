"""``gridbot simulate``: serve the grid simulator until interrupted, optionally writing a config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from .simulator import GridSimulator, Topology, default_topology, load_topology

TRANSPORTS = ("auto", "rtm", "socket_mode")
#: What a standalone simulator keeps: the newest records of each log and the newest messages.
#: A day's traffic must fit in bounded memory (issue 16: 1.1 GB after 400,000 messages).
SIMULATE_KEEP = 10_000


def run_simulate(
    topology: str | None,
    host: str,
    port: int,
    write_config: str | None,
    *,
    transport: str = "auto",
) -> int:
    """Serve the simulator until SIGINT/SIGTERM; returns the exit status (0).

    ``transport`` picks what the written config uses: ``auto`` gives Socket Mode to apps that
    have an app token and RTM to the others.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
    topo = load_topology(topology) if topology else default_topology()
    return asyncio.run(_serve(topo, host, port, write_config, transport))


async def _serve(topo: Topology, host: str, port: int, write_config: str | None, transport: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with GridSimulator(
            topo, host=host, port=port, keep=SIMULATE_KEEP, keep_messages=SIMULATE_KEEP
        ) as sim:
            print(describe(sim), flush=True)
            if write_config:
                _write_private(Path(write_config), config_toml(sim, transport))
                print(f"config written to {write_config}", flush=True)
            print("serving; press Ctrl-C to stop", flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    print("simulator stopped", flush=True)
    return 0


def describe(sim: GridSimulator) -> str:
    """The org as a human reads it: URL, teams with their tokens, apps, users, conversations."""
    topo = sim.topology
    lines = [
        f"Enterprise Grid simulator: {topo.enterprise.name} ({topo.enterprise.id})",
        f"API URL: {sim.api_url}",
        "",
        "Teams:",
    ]
    for team in topo.teams:
        lines.append(f"  {team.id}  {team.name} ({team.domain})")
        bots = topo.bots_on(team.id)
        for bot in bots:
            inst = bot.installation
            lines.append(
                f"    {bot.app.name} ({bot.app.id}): bot_token {inst.bot_token} (bot user {inst.bot_user_id})"
            )
        if not bots:
            lines.append("    (no app installed)")
    lines += ["", "Apps:"]
    for app in topo.apps:
        lines.append(f"  {app.id}  {app.name}  app_token {app.app_token or '(none: RTM only)'}")
    lines += ["", "Users:"]
    for user in topo.users:
        flags = [
            f
            for f, on in (("admin", user.is_admin), ("owner", user.is_owner), ("guest", user.is_restricted))
            if on
        ]
        token = f"  user_token {user.user_token}" if user.user_token else ""
        extra = f" [{', '.join(flags)}]" if flags else ""
        lines.append(f"  {user.id}  {user.name} (home {user.home_team}){extra}{token}")
    lines += ["", "Conversations:"]
    for conv in topo.conversations:
        label = conv.name or ",".join(conv.members)
        lines.append(
            f"  {conv.id}  {conv.kind:<7} {label}  teams {','.join(conv.teams)}"
            f"  bots {','.join(conv.bot_teams) or '-'}"
        )
    return "\n".join(lines)


def config_toml(sim: GridSimulator, transport: str = "auto") -> str:
    """A gridbot config that runs one link per installation against this simulator."""
    q = json.dumps  # a JSON string of plain text is a valid TOML basic string
    lines = ["[slack]", f"api_url = {q(sim.api_url)}", ""]
    for bot in sim.topology.bots:
        use_socket_mode = transport == "socket_mode" or (
            transport == "auto" and bot.app.app_token is not None
        )
        if use_socket_mode and bot.app.app_token is None:
            raise ValueError(f"app {bot.app.id} has no app_token: it cannot use Socket Mode")
        team = sim.topology.team_by_id[bot.team]
        lines += [
            "[[teams]]",
            f"name = {q(f'{team.name} / {bot.app.name}')}",
            f"transport = {q('socket_mode' if use_socket_mode else 'rtm')}",
            f"bot_token = {q(bot.installation.bot_token)}",
        ]
        if use_socket_mode:
            lines.append(f"app_token = {q(bot.app.app_token)}")
        lines.append("")
    lines += ["[plugins]", 'enabled = ["echo"]', ""]
    return "\n".join(lines)


def _write_private(path: Path, text: str) -> None:
    # tokens inside, even simulated ones: keep the file private like a real config
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)
