"""Which Redis failures mean "the store is unavailable" (the caller buffers and retries), in one place."""

from __future__ import annotations

from redis.exceptions import ClusterError, ReadOnlyError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Failures that a failover or a network blip explains: the caller buffers and retries. A Cluster
# answers CLUSTERDOWN / TRYAGAIN while a replica is promoted; a demoted Sentinel master READONLY.
TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
    ReadOnlyError,
)
