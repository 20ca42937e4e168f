"""Token rotation against a fake ``oauth.v2.access`` that enforces single-use refresh tokens
(platform-2026.md, "OAuth and token rotation"), on the memory store and the real Redis."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from gridtest import log_lines, serving, wait_until
from installs.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from gridbot.installs import Install, InstallStore
from gridbot.installs.rotation import RotationError, RotationFailed, Rotator, oauth_client
from gridbot.secrets import Secret

NOW = 1_900_000_000.0


@pytest.fixture
async def slack() -> AsyncIterator[tuple[FakeSlack, str]]:
    fake = FakeSlack()
    async with serving(fake.app()) as url:
        yield fake, url + "/api/"


def rotator(
    store: InstallStore, api: str, holder: str, clock: Callable[[], float] = lambda: NOW, secret: str = CLIENT_SECRET
) -> Rotator:
    return Rotator(
        store, client_id=CLIENT_ID, client_secret=Secret(secret), client=oauth_client(api),
        holder=holder, poll=0.005, clock=clock,
    )  # fmt: skip


async def installed(store: InstallStore, fake: FakeSlack, team: str, expires_at: float) -> Install:
    token, refresh = fake.issue(team)
    install = Install(
        enterprise_id=None, team_id=team, is_enterprise_install=False, bot_token=Secret(token),
        refresh_token=Secret(refresh), expires_at=int(expires_at), bot_user_id="UB1",
    )  # fmt: skip
    await store.put(install)
    return install


async def test_concurrent_refreshers_spend_each_refresh_token_once(
    installs: InstallStore, slack: tuple[FakeSlack, str]
) -> None:
    """Ten refreshers (as many processes would) see the token due at once: one spends it, all get
    the new pair, nobody meets ``invalid_refresh_token`` (bolt-python #663, node-slack-sdk #2504)."""
    fake, api = slack
    now = [NOW]
    await installed(installs, fake, "T1", NOW + 60)
    fake.gate.clear()  # the first refresh waits until every refresher is under way
    tasks = [asyncio.create_task(rotator(installs, api, f"p{n}", lambda: now[0]).fresh("team:T1")) for n in range(10)]
    await wait_until(lambda: fake.requests >= 1, what="the first refresh")
    fake.gate.set()
    results = await asyncio.gather(*tasks)
    assert len(fake.refreshes) == 1 and fake.refused == []
    stored = await installs.get("team:T1")
    assert stored is not None and {r.bot_token for r in results} == {stored.bot_token}
    assert stored.bot_token.get() in fake.valid_tokens and stored.expires_at == int(NOW) + fake.expires_in
    # and exactly one refresh per expiry, round after round
    for round_ in range(2, 6):
        now[0] += fake.expires_in
        await asyncio.gather(*(rotator(installs, api, f"p{n}", lambda: now[0]).fresh("team:T1") for n in range(10)))
        assert len(fake.refreshes) == round_ and fake.refused == []


async def test_a_token_with_time_left_is_not_refreshed(installs: InstallStore, slack: tuple[FakeSlack, str]) -> None:
    fake, api = slack
    install = await installed(installs, fake, "T1", NOW + 7200 + 60)
    assert (await rotator(installs, api, "p1").fresh("team:T1")).bot_token == install.bot_token
    assert fake.requests == 0


async def test_sweeps_of_several_processes_refresh_each_due_install_once(
    installs: InstallStore, slack: tuple[FakeSlack, str]
) -> None:
    fake, api = slack
    await installed(installs, fake, "T1", NOW + 10)
    await installed(installs, fake, "T2", NOW - 10)  # already expired: refreshed too
    await installed(installs, fake, "T3", NOW + 86_400)
    a, b = await asyncio.gather(rotator(installs, api, "a").sweep(), rotator(installs, api, "b").sweep())
    assert sorted(a + b) == ["team:T1", "team:T2"]
    assert len(fake.refreshes) == 2 and fake.refused == []


async def test_a_refused_refresh_token_stops_the_install_with_one_error_never_a_loop(
    installs: InstallStore, slack: tuple[FakeSlack, str]
) -> None:
    fake, api = slack
    install = await installed(installs, fake, "T1", NOW + 60)
    assert install.refresh_token is not None
    fake.refresh_tokens.discard(install.refresh_token.get())  # e.g. spent by an old deployment
    with log_lines("info") as stream:
        async with asyncio.timeout(10):  # a loop would spin past this
            outcomes = await asyncio.gather(
                *(rotator(installs, api, f"p{n}").fresh("team:T1") for n in range(5)), return_exceptions=True
            )
            await rotator(installs, api, "later").sweep()
            await rotator(installs, api, "later").sweep()
    assert all(isinstance(o, RotationFailed) for o in outcomes)
    assert fake.requests == 1
    stored = await installs.get("team:T1")
    assert stored is not None and stored.failed == "invalid_refresh_token"
    failures = [line for line in stream.getvalue().splitlines() if "install.refresh_failed" in line]
    assert len(failures) == 1 and "team:T1" in failures[0]
    assert "reinstall the app" in str(outcomes[0])


async def test_a_refresh_slack_refused_releases_its_claim(installs: InstallStore, slack: tuple[FakeSlack, str]) -> None:
    """A wrong client secret is answered before anything is spent: the next try need not wait."""
    fake, api = slack
    await installed(installs, fake, "T1", NOW + 60)
    with pytest.raises(RotationError, match="bad_client_secret"):
        await rotator(installs, api, "p1", secret="wrong").fresh("team:T1")
    async with asyncio.timeout(5):  # the claim lives 60 s: only a release lets p2 spend now
        await rotator(installs, api, "p2").fresh("team:T1")
    assert len(fake.refreshes) == 1


async def test_token_expired_refreshes_and_retries_once(installs: InstallStore, slack: tuple[FakeSlack, str]) -> None:
    fake, api = slack
    install = await installed(installs, fake, "T1", NOW + 86_400)
    fake.expire(install.bot_token.get())  # Slack says expired before our clock does
    calls: list[Secret] = []

    async def auth_test(token: Secret) -> str:
        calls.append(token)
        answer = await AsyncWebClient(token=token.get(), base_url=api).auth_test()
        return str(answer["user_id"])

    assert await rotator(installs, api, "p1").call("team:T1", auth_test) == "UB1"
    assert len(calls) == 2 and len(fake.refreshes) == 1

    async def always_expired(token: Secret) -> None:
        calls.append(token)
        await AsyncWebClient(token="xoxe.xoxb-dead", base_url=api).auth_test()

    calls.clear()
    with pytest.raises(SlackApiError):
        await rotator(installs, api, "p1").call("team:T1", always_expired)
    assert len(calls) == 2 and len(fake.refreshes) == 2  # one retry, one refresh: no loop


async def test_no_token_or_client_secret_reaches_a_log_line(
    installs: InstallStore, slack: tuple[FakeSlack, str]
) -> None:
    """slack_sdk logs request forms and answer bodies at debug level: the rotator's client never
    makes those lines, even with every logger at debug."""
    fake, api = slack
    install = await installed(installs, fake, "T1", NOW + 60)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with log_lines("debug") as stream:
            rot = rotator(installs, api, "p1")
            after = await rot.fresh("team:T1")
            fake.refresh_tokens.clear()
            after_expired = await installs.get("team:T1")
            assert after_expired is not None
            await installs.put(after_expired)
            try:
                await rot.refresh("team:T1")
            except RotationFailed as exc:
                error = str(exc) + repr(exc)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert install.refresh_token is not None and after.refresh_token is not None
    secrets = [install.bot_token.get(), install.refresh_token.get(), after.bot_token.get(),
               after.refresh_token.get(), CLIENT_SECRET]  # fmt: skip
    text = captured.getvalue() + stream.getvalue() + error + repr(rot) + repr(after)
    assert "install.token_refreshed" in stream.getvalue()
    assert [s for s in secrets if s in text] == []


CHILD = """
import asyncio, sys
from gridbot import logs
from gridbot.installs import RedisInstallStore
from gridbot.installs.rotation import Rotator, oauth_client
from gridbot.secrets import Secret

async def main(url, prefix, api, client_id, secret, now):
    logs.configure("info", stream=sys.stderr)  # stdout carries the answer alone
    store = RedisInstallStore.from_url(url, key_prefix=prefix)
    rotators = [
        Rotator(store, client_id=client_id, client_secret=Secret(secret), client=oauth_client(api),
                holder=f"child-{n}", poll=0.005, clock=lambda: float(now))
        for n in range(5)
    ]
    print("ready", flush=True)
    results = await asyncio.gather(*(r.fresh("team:T1") for r in rotators))
    print(" ".join(sorted({r.bot_token.digest() for r in results})), flush=True)
    await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_spend_each_refresh_token_once(
    redis_url: str, redis_prefix: str, slack: tuple[FakeSlack, str]
) -> None:
    """Another process's five refreshers and this one's five, one due token: one refresh."""
    import os
    import sys

    from gridbot.installs import RedisInstallStore

    fake, api = slack
    store = RedisInstallStore.from_url(redis_url, key_prefix=redis_prefix)
    await installed(store, fake, "T1", NOW + 60)
    fake.gate.clear()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis_url, redis_prefix, api, CLIENT_ID, CLIENT_SECRET, str(int(NOW)),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 30)).strip() == b"ready"
        mine = [asyncio.create_task(rotator(store, api, f"parent-{n}").fresh("team:T1")) for n in range(5)]
        await wait_until(lambda: fake.requests >= 1, what="the first refresh")
        fake.gate.set()
        results = await asyncio.gather(*mine)
        theirs = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
        assert await asyncio.wait_for(child.wait(), 30) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    stored = await store.get("team:T1")
    await store.close()
    assert len(fake.refreshes) == 1 and fake.refused == []
    assert stored is not None and {r.bot_token for r in results} == {stored.bot_token}
    assert theirs == [stored.bot_token.digest()]
