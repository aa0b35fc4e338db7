"""`python -m bench.codecs`: the JSON work of one proxied request, timed per codec (issue 5 §3).

The hot path decodes the client's body, encodes the upstream's (with the model changed), decodes the
upstream's answer and encodes it again with `usage.cost` spliced in as an exact number, and decodes each
stream event. Each step is timed with orjson (Calcifer's codec) and, when installed, msgspec
(`.venv/bin/pip install msgspec`: a comparison only, not a dependency), both to and from plain Python
objects, as the gateway uses them.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from decimal import Decimal

import orjson

from bench import payloads

COST = Decimal("0.0000138")
Codec = tuple[Callable[[bytes], object], Callable[[object], bytes], Callable[[Decimal], object]]


def _codecs() -> dict[str, Codec]:
    found: dict[str, Codec] = {
        "orjson": (orjson.loads, orjson.dumps, lambda cost: orjson.Fragment(format(cost, "f").encode())),
    }
    try:
        msgspec = importlib.import_module("msgspec")  # optional: not in the lock
    except ImportError:
        return found
    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    found["msgspec"] = (decoder.decode, encoder.encode, lambda cost: msgspec.Raw(format(cost, "f").encode()))
    return found


def _steps(codec: Codec) -> dict[str, Callable[[], object]]:
    loads, dumps, exact = codec
    chunk = payloads.EVENTS[3][6:-2]  # one content event's JSON

    def forward() -> bytes:
        body = loads(payloads.REQUEST)
        assert isinstance(body, dict)
        body["model"] = payloads.UPSTREAM_MODEL
        return dumps(body)

    def answer() -> bytes:
        body = loads(payloads.COMPLETION)
        assert isinstance(body, dict)
        body["usage"]["cost"] = exact(COST)
        return dumps(body)

    return {
        "client body: decode, set model, encode": forward,
        "answer: decode, splice cost, encode": answer,
        "stream event: decode": lambda: loads(chunk),
    }


def measure(rounds: int = 50_000) -> list[tuple[str, str, float]]:
    """(step, codec, microseconds per call), the best of three timings of `rounds` calls each."""
    results = []
    for name, codec in _codecs().items():
        for step, call in _steps(codec).items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(rounds):
                    call()
                best = min(best, time.perf_counter() - started)
            results.append((step, name, best / rounds * 1e6))
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    rounds = int(args[0]) if args else 50_000
    print("| step | codec | us per call |\n|---|---|---:|")
    for step, name, us in measure(rounds):
        print(f"| {step} | {name} | {us:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
