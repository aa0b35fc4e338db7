"""`SqlSessionStore` on SQLite and a real PostgreSQL: the same behaviour as the memory store, shared."""

from __future__ import annotations

from calcifer.domain.sessions import ConsoleSession, SessionPolicy, SessionStore
from calcifer.storage.database import Database
from calcifer.storage.sessions import SqlSessionStore
from tests.storage.conftest import Open


def session(
    digest: str, key_id: str | None = None, created: float = 0.0, seen: float = 0.0
) -> ConsoleSession:
    return ConsoleSession(digest, key_id, "master key", f"csrf-{digest}", created, seen)


async def test_sessions_are_kept_touched_and_removed(db: Database) -> None:
    store = SqlSessionStore(db)
    assert isinstance(store, SessionStore)
    await store.add(session("a", created=1.5, seen=2.25))
    assert await store.get("a") == session("a", created=1.5, seen=2.25)
    await store.touch("a", 9.75)
    found = await store.get("a")
    assert found is not None and found.seen == 9.75 and found.csrf == "csrf-a"
    await store.remove("a")
    assert await store.get("a") is None and await store.get("never") is None


async def test_revocation_and_sweeping(db: Database) -> None:
    store = SqlSessionStore(db)
    for digest, key_id, created, seen in [("m1", None, 0, 0), ("m2", None, 0, 95), ("k1", "key_a", 90, 95)]:
        await store.add(session(digest, key_id, created, seen))
    assert await store.remove_stale(SessionPolicy(idle=10, lifetime=100), now=100) == 1  # m1 idle
    assert await store.get("m1") is None and await store.get("m2") is not None
    assert await store.remove_stale(SessionPolicy(idle=10, lifetime=50), now=100) == 1  # m2 too old
    assert await store.remove_all("key_a") == 1 and await store.get("k1") is None
    assert await store.remove_all(None) == 0


async def test_a_session_opened_by_one_replica_is_seen_by_another(open_db: Open) -> None:
    first, second = SqlSessionStore(await open_db()), SqlSessionStore(await open_db())
    await first.add(session("shared"))
    assert await second.get("shared") == session("shared")
    await second.remove_all(None)
    assert await first.get("shared") is None
