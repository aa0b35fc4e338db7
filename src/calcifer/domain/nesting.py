"""How deeply JSON may nest on its way through the gateway.

Parsing a request takes JSON up to 1024 levels deep, but JSON that deep cannot be sent on: every
provider encodes what it forwards again, and the encoder stops at 255 levels. So a request body is
held to `MAX_DEPTH` where it enters, and JSON that a translation parses out of a string (a tool call's
`arguments`) where it is parsed. `MAX_DEPTH` leaves room for the few levels a translation puts around
a client's values (a tool schema moves one level down in Gemini's request, for one).
"""

from __future__ import annotations

MAX_DEPTH = 200


def deeper_than(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (a scalar: 0 levels).
    Walks with an explicit stack, so any depth is measured without recursion."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[dict[object, object] | list[object], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False
