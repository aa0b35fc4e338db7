"""Console sessions: what the server keeps for a signed-in browser, and when a session ends.

The browser holds a random token; the store keeps only its digest. A session ends when it has been idle
for `idle` seconds, `lifetime` seconds after login in any case, at logout, or when every session of
its identity is revoked. `key_id` is the key it signed in with (None: the master key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    digest: str
    key_id: str | None
    who: str  # what the pages say the visitor signed in as
    csrf: str
    created: float  # epoch seconds
    seen: float


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: float = 3600.0
    lifetime: float = 12 * 3600.0
    touch_every: float = 60.0  # `seen` is written at most this often (a write per page view is waste)

    def alive(self, session: ConsoleSession, now: float) -> bool:
        return now - session.seen <= self.idle and now - session.created <= self.lifetime

    def needs_touch(self, session: ConsoleSession, now: float) -> bool:
        return now - session.seen >= self.touch_every


@runtime_checkable
class SessionStore(Protocol):
    """Where console sessions are kept (shared by every worker and replica when it is the database)."""

    async def add(self, session: ConsoleSession) -> None: ...

    async def get(self, digest: str) -> ConsoleSession | None: ...

    async def touch(self, digest: str, seen: float) -> None: ...

    async def remove(self, digest: str) -> None: ...

    async def remove_all(self, key_id: str | None) -> int:
        """End every session signed in with `key_id` (None: the master key); how many ended."""
        ...

    async def remove_stale(self, policy: SessionPolicy, now: float) -> int:
        """Drop the sessions `policy` says have ended; how many."""
        ...
