"""Storage behind one interface: :class:`MemoryStore` (one process) and :class:`RedisStore`."""

from gridbot.store.base import Decision, Election, Outcome, Store, StoreUnavailable
from gridbot.store.memory import MemoryStore
from gridbot.store.redis import RedisStore

__all__ = ["Decision", "Election", "MemoryStore", "Outcome", "RedisStore", "Store", "StoreUnavailable"]
