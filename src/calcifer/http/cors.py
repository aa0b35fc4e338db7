"""CORS as the `CORS_ALLOWED_*` settings say: preflights answered, and the headers a simple response
from an allowed origin carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response

from calcifer.http.headers import header_names


@dataclass(frozen=True, slots=True)
class Cors:
    """CORS as the `CORS_ALLOWED_*` settings say; `*` allows any origin (or header), and a header name
    ending in `*` allows every header it begins (`x-stainless-*`: what the OpenAI and Anthropic SDKs
    add in a browser)."""

    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...] = ()
    _lower_headers: frozenset[str] = field(init=False)
    _prefixes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        lower = [h.lower() for h in self.headers]
        object.__setattr__(self, "_lower_headers", frozenset(h for h in lower if not h.endswith("*")))
        prefixes = tuple(h[:-1] for h in lower if h.endswith("*") and h != "*")
        object.__setattr__(self, "_prefixes", prefixes)

    def _allows_header(self, name: str) -> bool:
        return name in self._lower_headers or name.startswith(self._prefixes)

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def preflight(self, origin: str, method: str, requested_headers: str) -> Response:
        wanted = [h.strip().lower() for h in requested_headers.split(",") if h.strip()]
        allowed = (
            self.allows_origin(origin)
            and method in self.methods
            and ("*" in self.headers or all(self._allows_header(h) for h in wanted))
        )
        if "*" in self.headers:
            allowed_headers = header_names(wanted)
        else:  # the names configured, and those of the requested that a `prefix-*` allows
            exact = [h for h in self.headers if not h.endswith("*")]
            allowed_headers = header_names(exact + [h for h in wanted if h not in self._lower_headers])
        if not allowed or allowed_headers is None:
            return Response("Disallowed CORS request", status_code=400, media_type="text/plain")
        headers = {
            "access-control-allow-origin": "*" if "*" in self.origins else origin,
            "access-control-allow-methods": ", ".join(self.methods),
            "access-control-allow-headers": allowed_headers,
            "access-control-max-age": "600",
            "vary": "Origin",
        }
        return Response(b"OK", status_code=200, media_type="text/plain", headers=headers)

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        value = b"*" if "*" in self.origins else origin
        headers = [(b"access-control-allow-origin", value), (b"vary", b"Origin")]
        if self.expose:
            headers.append((b"access-control-expose-headers", ", ".join(self.expose).encode()))
        return headers
