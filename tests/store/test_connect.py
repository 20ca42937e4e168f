"""redis.url: which deployment a URL names, read without connecting (gridbot/store/connect.py)."""

from __future__ import annotations

import re

import pytest

from gridbot.store import RedisStore
from gridbot.store.connect import Target, parse


def test_a_plain_url_goes_to_redis_py_unchanged() -> None:
    for url in ("redis://:pw@10.0.0.5:6380/2?ssl_cert_reqs=none", "unix:///run/redis.sock?db=1"):
        assert parse(url) == Target("server", url=url)


def test_cluster_urls_list_their_nodes_with_default_ports_and_decoded_credentials() -> None:
    target = parse("rediss+cluster://bot:p%40ss@r1:7000,r2,[::1]:7002,[fe80::2]")
    assert target.kind == "cluster" and target.tls
    assert target.nodes == (("r1", 7000), ("r2", 6379), ("::1", 7002), ("fe80::2", 6379))
    assert (target.username, target.password) == ("bot", "p@ss")
    assert parse("redis://r1:7000?cluster=true") == Target("cluster", nodes=(("r1", 7000),))


def test_a_sentinel_url_names_the_service_and_db() -> None:
    target = parse("redis+sentinel://:secret@s1,s2:26380/mymaster/3?sentinel_password=s%26p")
    assert target == Target(
        "sentinel",
        nodes=(("s1", 26379), ("s2", 26380)),
        password="secret",
        service="mymaster",
        db=3,
        sentinel_password="s&p",
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+cluster://", "a cluster URL needs at least one host:port"),
        ("redis+sentinel://s1:26379", "a sentinel URL is redis+sentinel://"),
        ("redis+sentinel:///mymaster", "a sentinel URL is redis+sentinel://"),
        ("redis+cluster://r1:70o0", "'r1:70o0' is not host"),
    ],
)
def test_an_unusable_url_names_the_setting(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=f"^redis.url: {re.escape(problem)}"):
        parse(url)


def test_secrets_stay_out_of_the_repr() -> None:
    shown = repr(parse("redis+sentinel://u:pw1@s1/m?sentinel_password=pw2")) + repr(parse("redis://:pw3@h"))
    assert not {"pw1", "pw2", "pw3"} & set(shown.replace("'", " ").split())
    assert "pw" not in shown


async def test_a_cluster_flag_set_to_false_leaves_a_working_standalone_url(
    redis_url: str, redis_prefix: str
) -> None:
    """gridbot's own ``cluster`` flag must not reach redis-py (which passes unknown args on)."""
    store = RedisStore.from_url(f"{redis_url}?cluster=false", key_prefix=redis_prefix)
    try:
        await store.ping()
    finally:
        await store.close()
