"""Installations that come and go: the store (memory and Redis twins), rotation, the OAuth flow."""

from gridbot.installs.model import Install, install_id, lookup_ids
from gridbot.installs.redis import RedisInstallStore
from gridbot.installs.store import Claim, InstallStore, MemoryInstallStore

__all__ = [
    "Claim",
    "Install",
    "InstallStore",
    "MemoryInstallStore",
    "RedisInstallStore",
    "install_id",
    "lookup_ids",
]
