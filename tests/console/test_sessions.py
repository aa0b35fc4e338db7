"""Console sessions and the login throttle, on a clock the test moves."""

from __future__ import annotations

from calcifer.console.sessions import LoginThrottle, SessionStore
from calcifer.http.auth import MASTER, Identity


def test_a_session_lives_while_used_and_ends_when_idle_or_too_old() -> None:
    store = SessionStore(idle=60, lifetime=300)
    token, session = store.open(MASTER, "master key", now=1000)
    assert token not in repr(session) and session.digest != token
    assert store.get(token, 1059) is session
    assert store.get(token, 1118) is session  # each visit restarts the idle time
    assert store.get(token, 1179) is None  # idle for more than a minute
    token, _ = store.open(MASTER, "master key", now=2000)
    for minute in range(1, 5):
        assert store.get(token, 2000 + minute * 59) is not None
    assert store.get(token, 2301) is None  # past its lifetime however busy
    assert store.get(None, 2301) is None and store.get("", 2301) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    store = SessionStore()
    _, first = store.open(MASTER, "master key", 0)
    _, second = store.open(MASTER, "master key", 0)
    assert first.csrf != second.csrf
    assert first.csrf_matches(first.csrf) and not first.csrf_matches(second.csrf)
    assert not first.csrf_matches(None) and not first.csrf_matches("")


def test_logout_and_revocation() -> None:
    store = SessionStore()
    other = Identity(is_master=False, key=None)
    a, session_a = store.open(MASTER, "master key", 0)
    b, _ = store.open(MASTER, "master key", 0)
    c, _ = store.open(other, "someone", 0)
    store.close(session_a)
    assert store.get(a, 1) is None and store.get(b, 1) is not None
    assert store.revoke_all(MASTER) == 1
    assert store.get(b, 1) is None and store.get(c, 1) is not None


def test_expired_sessions_are_swept_and_a_flood_keeps_the_store_bounded() -> None:
    store = SessionStore(idle=10, lifetime=100)
    old, _ = store.open(MASTER, "master key", 0)
    for i in range(10_050):
        store.open(MASTER, "master key", 20 + i / 1000)
    assert store.get(old, 31) is None
    assert len(store._sessions) <= 10_000


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
