"""Console sessions, kept on the server: a random token in an HttpOnly cookie names one.

Only the token's digest is stored, so a copy of the store cannot be replayed as cookies. A session
ends when it has been idle for `idle` seconds, `lifetime` seconds after login in any case, at logout,
or when revoked (every session of an identity at once: `revoke_all`). Each carries its own CSRF token,
which every form that changes something must send back. Login attempts are throttled per client
address (`LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from calcifer.http.auth import Identity

_MAX_SESSIONS = 10_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class Session:
    identity: Identity
    who: str  # what the pages say the visitor signed in as ("master key", a key's name)
    csrf: str
    created: float
    seen: float
    digest: str = field(default="", repr=False)

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


class SessionStore:
    """Sessions in this process (a restart signs everyone out)."""

    def __init__(self, *, idle: float = 3600.0, lifetime: float = 12 * 3600.0) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}

    def open(self, identity: Identity, who: str, now: float) -> tuple[str, Session]:
        """A new session for `identity`: (the cookie's token, the session)."""
        self._sweep(now)
        token = secrets.token_urlsafe(32)
        session = Session(identity, who, secrets.token_urlsafe(32), now, now, _digest(token))
        self._sessions[session.digest] = session
        return token, session

    def get(self, token: str | None, now: float) -> Session | None:
        """The live session `token` names (its idle time restarted), or None."""
        if not token:
            return None
        digest = _digest(token)
        session = self._sessions.get(digest)
        if session is None:
            return None
        if now - session.seen > self.idle or now - session.created > self.lifetime:
            del self._sessions[digest]
            return None
        session.seen = now
        return session

    def close(self, session: Session) -> None:
        self._sessions.pop(session.digest, None)

    def revoke_all(self, identity: Identity) -> int:
        """End every session signed in as `identity`; how many there were."""
        ended = [d for d, s in self._sessions.items() if s.identity == identity]
        for digest in ended:
            del self._sessions[digest]
        return len(ended)

    def _sweep(self, now: float) -> None:
        stale = [
            d
            for d, s in self._sessions.items()
            if now - s.seen > self.idle or now - s.created > self.lifetime
        ]
        for digest in stale:
            del self._sessions[digest]
        if len(self._sessions) >= _MAX_SESSIONS:  # a flood of logins: the oldest sessions go first
            for digest in sorted(self._sessions, key=lambda d: self._sessions[d].seen)[: _MAX_SESSIONS // 10]:
                del self._sessions[digest]


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
        if len(self._failures) > _MAX_SESSIONS:
            self._failures.clear()
        self._failures.setdefault(client, deque()).append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
