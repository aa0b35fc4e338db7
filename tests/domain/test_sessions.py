"""When a console session ends, and when its last visit is worth writing down."""

from __future__ import annotations

from calcifer.domain.sessions import ConsoleSession, SessionPolicy


def test_a_session_ends_when_idle_or_past_its_lifetime() -> None:
    policy = SessionPolicy(idle=60, lifetime=400, touch_every=10)
    fresh = ConsoleSession("d", None, "master key", "c", created=0, seen=250)
    assert policy.alive(fresh, 300) and policy.alive(fresh, 310)
    assert not policy.alive(fresh, 301 + 10)  # 311 - 250 = 61 s idle
    assert not policy.alive(ConsoleSession("d", None, "m", "c", created=0, seen=399), 401)  # too old
    assert policy.needs_touch(fresh, 260) and not policy.needs_touch(fresh, 259)
