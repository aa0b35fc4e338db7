"""OAuth access tokens for Google Cloud (Vertex AI) from `google-auth`, kept fresh off the hot path.

Credentials come from a service-account JSON file, or application default credentials (which include
workload identity on GKE and the metadata server on Google Cloud). A token in hand is used until
`_SOON` before its expiry; from then a refresh starts in a worker thread in the background while the
current token still serves, and only a token that is missing, past `_LATE` or refused by the server
(`invalidate`) makes a request wait for the refresh. Refreshing is blocking network I/O in
google-auth: it never runs on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC

import google.auth
from google.auth import identity_pool
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import Request
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account

from calcifer.domain.errors import UpstreamRejected, UpstreamUnavailable

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_SOON = 600.0  # start a background refresh this long before expiry
_LATE = 60.0  # wait for a refresh when the token has less than this left


def load_credentials(env: Mapping[str, str]) -> tuple[Credentials | None, str | None]:
    """Credentials and their project: from the JSON file `GOOGLE_APPLICATION_CREDENTIALS` names (a
    service account or a workload identity federation config), else application default credentials;
    (None, None) when there are none."""
    path = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    try:
        if not path:
            found = google.auth.default(scopes=list(SCOPES))
            return found[0], found[1]
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
        kind = info.get("type")
        if kind == "service_account":
            account = service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))  # type: ignore[no-untyped-call]
            return account, info.get("project_id")
        if kind == "authorized_user":
            user = oauth2_credentials.Credentials.from_authorized_user_info(info, scopes=list(SCOPES))  # type: ignore[no-untyped-call]
            return user, info.get("quota_project_id")
        if kind == "external_account":  # workload identity federation (a file- or URL-sourced token)
            pool = identity_pool.Credentials.from_info(info, scopes=list(SCOPES))  # type: ignore[no-untyped-call]
            return pool, None
    except (GoogleAuthError, OSError, ValueError):
        return None, None
    return None, None


class GoogleTokens:
    def __init__(self, credentials: Credentials | None, now: Callable[[], float] = time.time) -> None:
        self._credentials = credentials
        self._now = now
        self._token: str | None = None
        self._expiry = 0.0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    @property
    def configured(self) -> bool:
        return self._credentials is not None

    async def token(self) -> str:
        left = self._expiry - self._now()
        if self._token is not None and left > _LATE:
            if left < _SOON and self._background is None:
                self._background = asyncio.create_task(self._refresh_in_background())
            return self._token
        await self._refresh(self._token)
        assert self._token is not None
        return self._token

    def invalidate(self, token: str) -> None:
        """The server refused `token`: the next request waits for a new one."""
        if self._token == token:
            self._expiry = 0.0

    async def _refresh_in_background(self) -> None:
        try:
            await self._refresh(self._token)
        except UpstreamUnavailable:
            pass  # the current token still serves; the next request past `_LATE` retries and reports
        finally:
            self._background = None

    async def _refresh(self, stale: str | None) -> None:
        async with self._lock:
            if self._token != stale and self._expiry - self._now() > _LATE:
                return  # another caller refreshed while this one waited
            self._token, self._expiry = await asyncio.to_thread(self._fetch)

    def _fetch(self) -> tuple[str, float]:
        credentials = self._credentials
        if credentials is None:
            raise UpstreamRejected(
                "no Google Cloud credentials were found", status=401, kind="authentication_error"
            )
        try:
            credentials.refresh(Request())  # type: ignore[no-untyped-call]
        except GoogleAuthError as error:
            raise UpstreamUnavailable(f"could not get a Google Cloud access token: {error}") from error
        expiry = credentials.expiry  # naive UTC, by google-auth's own clock
        remaining = expiry.replace(tzinfo=UTC).timestamp() - time.time() if expiry is not None else 3600.0
        return str(credentials.token), self._now() + remaining

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
            self._background = None
