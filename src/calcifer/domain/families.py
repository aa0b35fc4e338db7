"""Model families: the dated snapshot names a catalogue knows by prefix.

Clients often ask for a dated snapshot (`claude-sonnet-4-20250514`, `claude-3-5-sonnet-20241022`) of a
model the catalogue lists under one name and matches by prefix. A name is taken as a member of a family
only when what follows the prefix looks like a version (digits, a date, `-latest`), so that
`gpt-4o-audio-...` never passes for `gpt-4o`: a wrong price would be worse than a 404. The longest
matching prefix wins. The request goes upstream under the client's own name; it is routed and priced
as the family's model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_VERSION = re.compile(r"^[-@.]?(\d[\d.-]*|latest)(-latest)?$")
_MEMORY = 10_000  # names remembered (hits and misses); a client cannot grow it without bound


class ModelFamilies:
    def __init__(self, prefixes: Iterable[tuple[str, str]] = ()) -> None:
        self._prefixes = sorted(set(prefixes), key=lambda pair: (-len(pair[0]), pair))
        self._seen: dict[str, str | None] = {}

    def __bool__(self) -> bool:
        return bool(self._prefixes)

    def canonical(self, name: str) -> str | None:
        """The model `name` is a dated snapshot of, or None."""
        if name in self._seen:
            return self._seen[name]
        found = None
        for prefix, model in self._prefixes:
            if name != model and name.startswith(prefix) and _VERSION.match(name[len(prefix) :]):
                found = model
                break
        if len(self._seen) >= _MEMORY:
            self._seen.clear()
        self._seen[name] = found
        return found
