"""Console sessions over a `SessionStore`: tokens, CSRF tokens, expiry; and the login throttle.

Only a token's digest is stored, so a copy of the store cannot be replayed as cookies. Each session
carries its own CSRF token, which every form that changes something must send back. The database's
store (`storage/sessions.py`) is shared by every worker and replica; `MemorySessionStore` serves a
gateway built without a database (tests). Login attempts are throttled per client address, in each
process; behind a load balancer the address comes from `X-Forwarded-For` when the balancer is one of
the trusted proxies (`CALCIFER_TRUSTED_PROXIES`), see `client_address`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv4Network, IPv6Network, ip_address

from calcifer.domain.sessions import ConsoleSession, SessionPolicy, SessionStore

_MAX_ENTRIES = 10_000


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_matches(session: ConsoleSession, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), session.csrf.encode())


class Sessions:
    def __init__(self, store: SessionStore, policy: SessionPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or SessionPolicy()
        self._opened = 0

    async def open(self, key_id: str | None, who: str, now: float) -> tuple[str, ConsoleSession]:
        """A new session: (the cookie's token, the session)."""
        self._opened += 1
        if self._opened % 100 == 1:
            await self.store.remove_stale(self.policy, now)
        token = secrets.token_urlsafe(32)
        session = ConsoleSession(digest_of(token), key_id, who, secrets.token_urlsafe(32), now, now)
        await self.store.add(session)
        return token, session

    async def get(self, token: str | None, now: float) -> ConsoleSession | None:
        """The live session `token` names (its idle time restarted), or None."""
        if not token or len(token) > 200:
            return None
        session = await self.store.get(digest_of(token))
        if session is None:
            return None
        if not self.policy.alive(session, now):
            await self.store.remove(session.digest)
            return None
        if self.policy.needs_touch(session, now):
            await self.store.touch(session.digest, now)
            session = replace(session, seen=now)
        return session


class MemorySessionStore:
    """Sessions in this process (a restart signs everyone out)."""

    def __init__(self) -> None:
        self._sessions: dict[str, ConsoleSession] = {}

    async def add(self, session: ConsoleSession) -> None:
        if len(self._sessions) >= _MAX_ENTRIES:  # a flood of logins: the least recently seen go first
            for digest in sorted(self._sessions, key=lambda d: self._sessions[d].seen)[: _MAX_ENTRIES // 10]:
                del self._sessions[digest]
        self._sessions[session.digest] = session

    async def get(self, digest: str) -> ConsoleSession | None:
        return self._sessions.get(digest)

    async def touch(self, digest: str, seen: float) -> None:
        session = self._sessions.get(digest)
        if session is not None:
            self._sessions[digest] = replace(session, seen=seen)

    async def remove(self, digest: str) -> None:
        self._sessions.pop(digest, None)

    async def remove_all(self, key_id: str | None) -> int:
        ended = [d for d, s in self._sessions.items() if s.key_id == key_id]
        for digest in ended:
            del self._sessions[digest]
        return len(ended)

    async def remove_stale(self, policy: SessionPolicy, now: float) -> int:
        stale = [d for d, s in self._sessions.items() if not policy.alive(s, now)]
        for digest in stale:
            del self._sessions[digest]
        return len(stale)


class LoginThrottle:
    """At most `attempts` failed logins per client address within `window` seconds."""

    def __init__(self, attempts: int = 5, window: float = 60.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str, now: float) -> float:
        """Seconds until `client` may try again (0 when it may now)."""
        failures = self._failures.get(client)
        if failures is None:
            return 0.0
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return 0.0
        if len(failures) < self.attempts:
            return 0.0
        return self.window - (now - failures[0])

    def failed(self, client: str, now: float) -> None:
        if len(self._failures) > _MAX_ENTRIES:
            self._failures.clear()
        self._failures.setdefault(client, deque()).append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


Networks = Sequence[IPv4Network | IPv6Network]


def client_address(peer: str | None, forwarded_for: str | None, proxies: Networks) -> str:
    """The address a login attempt is counted against. The peer's, unless the peer is a trusted proxy:
    then the nearest `X-Forwarded-For` hop that is not itself a trusted proxy, read from the right
    (each proxy appends the address it saw; hops further left were written by the client and may be
    forged), or the leftmost when every hop is trusted."""
    if peer is None:
        return "unknown"
    if not forwarded_for or not trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def trusted(address: str | None, proxies: Networks) -> bool:
    """Whether `address` is one of the trusted proxies (their X-Forwarded-* headers are believed)."""
    if not proxies or address is None:
        return False
    try:
        found = ip_address(address)
    except ValueError:
        return False
    return any(found in network for network in proxies)
