"""AWS Signature Version 4 for Bedrock, from botocore's signer and its standard credential chain.

botocore's `SigV4Auth` signs each request; its credential resolver finds the credentials the way every
AWS SDK does (environment, shared config and credentials files with profiles, web identity / IRSA,
container and instance metadata). Refreshable credentials (roles, IRSA, metadata) are refreshed by
botocore before they expire; that refresh is network I/O, so it runs in a worker thread, one at a
time, and only when the credentials in hand are close to expiry: signing itself never blocks the
event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError
from botocore.session import Session

from calcifer.domain.errors import UpstreamRejected

_EARLY = 900.0  # ask botocore again from this long before expiry (its own advisory refresh window)


def chain_credentials(env: Mapping[str, str], profile: str | None = None) -> Credentials | None:
    """The credentials of the standard AWS chain, or None when it finds none. A `profile` given (a
    deployment's own) selects that profile of the shared files; otherwise static keys in `env`
    (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) come first, and `AWS_PROFILE`
    selects the profile."""
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret and profile is None:
        return Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
    try:
        session = Session(profile=profile or env.get("AWS_PROFILE") or None)
        found: Credentials | None = session.get_credentials()
    except BotoCoreError:  # an unknown profile, an unreadable file: no credentials (the provider says so)
        return None
    return found


class AwsSigner:
    """Signs requests for one service in one region with credentials kept fresh off the event loop."""

    def __init__(
        self,
        credentials: Credentials | None,
        region: str,
        service: str = "bedrock",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self.region = region
        self._service = service
        self._now = now  # the clock botocore's credentials use (injectable for tests)
        self._frozen: ReadOnlyCredentials | None = None
        self._fresh_until = 0.0  # until when `_frozen` is used as it is
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self._credentials is not None

    async def _current(self) -> ReadOnlyCredentials:
        if self._frozen is not None and self._now() < self._fresh_until:
            return self._frozen
        async with self._lock:
            if self._frozen is None or self._now() >= self._fresh_until:
                self._frozen, self._fresh_until = await asyncio.to_thread(self._freeze)
        return self._frozen

    def _freeze(self) -> tuple[ReadOnlyCredentials, float]:
        """Credentials as they are now (botocore refreshes them first when they are near expiry), and
        until when they may be used without asking again."""
        credentials = self._credentials
        if credentials is None:
            raise UpstreamRejected("no AWS credentials were found", status=401, kind="authentication_error")
        frozen = credentials.get_frozen_credentials()
        if isinstance(credentials, RefreshableCredentials):
            expiry = credentials._expiry_time  # botocore keeps the expiry of what it just gave private
            until = expiry.timestamp() - _EARLY if expiry is not None else self._now() + 60.0
            return frozen, until
        return frozen, float("inf")

    async def headers(self, url: str, body: bytes) -> dict[str, str]:
        """The headers that sign a JSON POST of `body` to `url` (Authorization, X-Amz-Date and, for
        temporary credentials, X-Amz-Security-Token)."""
        credentials = await self._current()
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(credentials, self._service, self.region).add_auth(request)
        return {name: value for name, value in request.headers.items() if name.lower() != "content-type"}
