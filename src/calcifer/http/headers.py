"""Response header values the gateway derives from a client's input, checked in this one place.

A header line carries visible ASCII safely and nothing else: a control character would end the head
(the server refuses the whole response), a character above Latin-1 cannot be encoded at all, and a
line of many KiB is more than HTTP clients read (httpx stops at 100 KiB, `http.client` at 64 KiB).
What fails the check is left out of the answer, which still goes out; no other module copies a
client's text into a header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_VALUE = 256  # characters of client text echoed in one header (a model name, say)
_VISIBLE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")  # a header name (RFC 9110 token)


def echoed(value: str) -> str | None:
    """`value` when it can go out in a response header as it is, else None (leave the header out)."""
    return value if len(value) <= MAX_VALUE and _VISIBLE.fullmatch(value) else None


def request_id(value: bytes) -> bool:
    """Whether a client's `x-request-id` may be kept as the request's id (and echoed back)."""
    return _REQUEST_ID.fullmatch(value) is not None


def header_names(names: Iterable[str]) -> str | None:
    """A list of header names as one header value, or None when one of them is not a header name."""
    kept = list(names)
    if not all(_TOKEN.fullmatch(name) for name in kept):
        return None
    return ", ".join(kept)
