"""Scale-out fixtures: private Redis Cluster and Sentinel deployments (see redis_nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scaleout.redis_nodes import Cluster, SentinelSet, require_binaries


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Six redis-server --cluster-enabled nodes (three masters, three replicas) on free ports."""
    require_binaries()
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelSet]:
    """A master, its replica and three sentinels (quorum 2) on free ports; per test: it fails over."""
    require_binaries()
    deployment = SentinelSet(tmp_path)
    try:
        yield deployment.start()
    finally:
        deployment.stop()
