"""How deeply JSON may nest on its way through the gateway.

Parsing a request takes JSON up to 1024 levels deep, but JSON that deep cannot be sent on: every
provider encodes what it forwards again, and the encoder stops at 255 levels. So a request body is
held to `MAX_DEPTH` where it enters, and JSON that a translation parses out of a string (a tool call's
`arguments`) where it is parsed. `MAX_DEPTH` leaves room for the few levels a translation puts around
a client's values (a tool schema moves one level down in Gemini's request, for one).
"""

from __future__ import annotations

from array import array
from itertools import accumulate

MAX_DEPTH = 200
_CONTAINERS = (dict, list)  # a tuple: `dict | list` would build a union at every test

# What a JSON text's nesting is read from: its quotes and brackets, each bracket as a signed step.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def deeper_than(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (a scalar: 0 levels).
    Walks level by level (one list of the next level's containers at a time), without recursion."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, _CONTAINERS)
        ]
    return False


def _structure(text: str | bytes) -> bytes:
    """The quotes and brackets of JSON `text`, escaped quotes left out (so quotes pair up)."""
    raw = text.encode() if isinstance(text, str) else text
    if b"\\" in raw:  # escapes hold the only quotes that do not start or end a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return raw.translate(None, _NOT_STRUCTURE)


def _depth(structure: bytes) -> int:
    outside = b"".join(structure.split(b'"')[::2])  # every other piece is inside a string
    return max(accumulate(array("b", outside.translate(_STEPS))), default=0)


def bracket_depth(text: str | bytes) -> int:
    """The deepest running count of `[`/`{` in JSON `text`, brackets inside strings not counted."""
    return _depth(_structure(text))


def too_deep(parsed: object, text: str | bytes | None = None, limit: int = MAX_DEPTH) -> bool:
    """Whether `parsed` nests more than `limit` levels. With `text` (the JSON it was parsed from) that is
    mostly numbers and brackets (a token-id array, an embedding), the text's brackets are counted first
    (a byte scan, far cheaper than walking many values) and the value is walked only when they nest
    deeper than `limit`; text of many strings (an agent's messages) is cheaper to walk straight away."""
    if text is not None and _few_strings(text):
        structure = _structure(text)
        if structure.count(b"[") + structure.count(b"{") <= limit or _depth(structure) <= limit:
            return False
    return deeper_than(parsed, limit)


def _few_strings(text: str | bytes) -> bool:
    """Fewer than one quote in 64 characters: the bracket count pays (it splits the text at quotes)."""
    quotes = text.count('"') if isinstance(text, str) else text.count(b'"')
    return quotes * 64 < len(text)
