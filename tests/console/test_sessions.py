"""Console sessions over a store, and the login throttle, on a clock the test moves."""

from __future__ import annotations

from ipaddress import ip_network

from calcifer.console.sessions import (
    LoginThrottle,
    MemorySessionStore,
    Sessions,
    client_address,
    csrf_matches,
    digest_of,
)
from calcifer.domain.sessions import SessionPolicy


def sessions(**policy: float) -> Sessions:
    return Sessions(MemorySessionStore(), SessionPolicy(**policy))


async def test_a_session_lives_while_used_and_ends_when_idle_or_too_old() -> None:
    store = sessions(idle=60, lifetime=300, touch_every=10)
    token, session = await store.open(None, "master key", now=1000)
    assert session.digest == digest_of(token) != token and token not in repr(session)
    assert (await store.get(token, 1059)) is not None
    assert (await store.get(token, 1118)) is not None  # each visit restarts the idle time
    assert (await store.get(token, 1179)) is None  # idle for more than a minute
    assert (await store.get(token, 1180)) is None  # and it is gone
    token, _ = await store.open(None, "master key", now=2000)
    for minute in range(1, 5):
        assert (await store.get(token, 2000 + minute * 59)) is not None
    assert (await store.get(token, 2301)) is None  # past its lifetime however busy
    for bad in (None, "", "x" * 201, "unknown"):
        assert (await store.get(bad, 2301)) is None


async def test_seen_is_written_at_most_every_touch_interval() -> None:
    store = sessions(idle=100, touch_every=30)
    token, session = await store.open(None, "master key", now=0)
    assert (await store.get(token, 20)) == session  # not touched yet
    touched = await store.get(token, 40)
    assert touched is not None and touched.seen == 40
    assert (await store.get(token, 130)) is not None  # idle counted from 40, not 0


async def test_csrf_tokens_belong_to_their_session() -> None:
    store = sessions()
    _, first = await store.open(None, "master key", 0)
    _, second = await store.open(None, "master key", 0)
    assert first.csrf != second.csrf
    assert csrf_matches(first, first.csrf) and not csrf_matches(first, second.csrf)
    assert not csrf_matches(first, None) and not csrf_matches(first, "")


async def test_logout_revocation_and_sweeping_in_memory() -> None:
    memory = MemorySessionStore()
    store = Sessions(memory, SessionPolicy(idle=10, lifetime=100))
    a, session_a = await store.open(None, "master key", 0)
    b, _ = await store.open(None, "master key", 0)
    c, _ = await store.open("key_admin", "an admin key", 0)
    await memory.remove(session_a.digest)
    assert await store.get(a, 1) is None and await store.get(b, 1) is not None
    assert await memory.remove_all(None) == 1
    assert await store.get(b, 1) is None and await store.get(c, 1) is not None
    assert await memory.remove_stale(store.policy, 50) == 1 and await store.get(c, 5) is None
    await memory.touch("nothing", 1)  # a session that has gone is not brought back
    assert await memory.get("nothing") is None


async def test_a_flood_of_logins_keeps_the_memory_store_bounded() -> None:
    memory = MemorySessionStore()
    store = Sessions(memory, SessionPolicy(idle=10_000))
    first, _ = await store.open(None, "master key", 0)
    for i in range(10_050):
        await store.open(None, "master key", 1 + i / 1000)
    assert len(memory._sessions) <= 10_000 and await store.get(first, 20) is None


def test_login_throttle_counts_failures_per_client_within_a_window() -> None:
    throttle = LoginThrottle(attempts=3, window=60)
    assert throttle.retry_after("a", 0) == 0
    for t in (0, 10, 20):
        throttle.failed("a", t)
    assert throttle.retry_after("a", 30) == 30  # the first failure leaves the window at 60
    assert throttle.retry_after("b", 30) == 0
    assert throttle.retry_after("a", 61) == 0  # two failures left in the window
    throttle.failed("a", 62)
    assert throttle.retry_after("a", 63) > 0
    throttle.succeeded("a")
    assert throttle.retry_after("a", 63) == 0
    throttle.failed("c", 0)
    assert throttle.retry_after("c", 100) == 0 and "c" not in throttle._failures


def test_the_client_address_is_forwarded_only_by_trusted_proxies() -> None:
    proxies = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))
    # No proxy trusted, or a peer that is not one: X-Forwarded-For is the client's word, ignored.
    assert client_address("10.0.0.5", "198.51.100.7", ()) == "10.0.0.5"
    assert client_address("203.0.113.9", "198.51.100.7", proxies) == "203.0.113.9"
    # A trusted proxy: the nearest hop that is not a trusted proxy; what the client wrote before it is not.
    assert client_address("10.0.0.5", "198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.2.0.1", proxies) == "198.51.100.7"
    assert client_address("fd00::1", "2001:db8::7", proxies) == "2001:db8::7"
    assert client_address("10.0.0.5", "not-an-address", proxies) == "not-an-address"
    # Every hop a proxy (a request from inside): the leftmost; no header at all: the peer.
    assert client_address("10.0.0.5", "10.9.9.9, 10.0.0.4", proxies) == "10.9.9.9"
    assert (
        client_address("10.0.0.5", None, proxies) == client_address("10.0.0.5", " , ", proxies) == "10.0.0.5"
    )
    assert client_address(None, "198.51.100.7", proxies) == "unknown"
