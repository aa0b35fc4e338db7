"""`python -m bench.keyed [KIND] [N] [ROUNDS] [--redis URL]`: what a budgeted, rate-limited caller costs,
in CPU per request, beside the keyless path in the same run (issue 14: at most 1.15x the keyless CPU).

Each configuration is measured by `bench.inprocess.measure` (the app called in-process, 8 concurrent
callers, the fake upstream in a child process, CPU by `time.process_time`), and the configurations are
interleaved round by round so that the machine's drift falls on all of them alike:

- `keyless`: no master key, no virtual key, a body naming no customer: no admission at all.
- `keyed`: a master key is set and every request presents a virtual key from the database that has a
  budget, RPM and TPM limits and belongs to a team with a budget; the body names a customer (OpenAI's
  `user` field) and every customer has the default budget (`CALCIFER_CUSTOMER_BUDGET`). Budgets are
  far above what the run spends, so every request is admitted at every level, as it is in production.
  Every period is daily, so that Redis lets a run's counters go within days.

Both run on the single-process limiter (in memory, SQLite ledger); with `--redis URL` (or
`CALCIFER_REDIS_URL` set) the same two run again with the limiter, cooldowns and budgets in Redis
(`keyless-redis`, `keyed-redis`). KIND is `json` (default), `stream` or `both`. The report gives each
configuration's median, its spread, and the keyed/keyless ratio of the medians.

`python -m bench.keyed [KIND] [N] --instructions [--keep DIR] [--redis URL]` counts instead of timing:
each configuration answers N requests (default 400) in its own process under callgrind, counted after
the warm-up as `bench.instructions` does, and the report gives instructions per request and the ratio.
The key and directory caches get a TTL 50x the production one there, as long in the app's own pace as
in production (the app runs ~50x slower under valgrind). `--keep DIR` keeps each configuration's
callgrind output as DIR/callgrind.NAME (for `callgrind_annotate --inclusive=yes`).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import uvloop

from bench.inprocess import Headers, Prepare, measure, measure_once, upstream_port
from bench.instructions import _counted, counted
from calcifer.domain.keys import issue_key
from calcifer.domain.levels import Team
from calcifer.http.asgi import GatewayApp

MASTER_KEY = "sk-bench-master-0123456789abcdef"
BUDGET = Decimal(1_000_000)  # USD at each level: far above what a run spends
LIMIT = 1_000_000_000  # requests and tokens per minute: far above what a run sends


def keyed_env() -> dict[str, str]:
    return {
        "CALCIFER_MASTER_KEY": MASTER_KEY,
        "CALCIFER_CUSTOMER_BUDGET": str(BUDGET),
        "CALCIFER_CUSTOMER_BUDGET_PERIOD": "daily",
    }


def keyed(customer: str) -> Prepare:
    """A team with a budget, a key in it with a budget and RPM/TPM limits, and a body naming
    `customer`: what every keyed request carries."""

    async def prepare(app: GatewayApp, body: bytes) -> tuple[Headers, bytes]:
        state = app.state
        team_id = f"bench-team-{uuid.uuid4().hex[:8]}"
        team = Team(team_id, "bench", datetime.now(UTC), max_budget=BUDGET, budget_period="daily")
        await state.directory.create(team)
        key, secret = issue_key(
            "bench",
            max_budget=BUDGET,
            budget_period="daily",
            rpm_limit=LIMIT,
            tpm_limit=LIMIT,
            team_id=team_id,
        )
        await state.keys.create(key)
        named = orjson.dumps({**orjson.loads(body), "user": customer})
        return [(b"authorization", f"Bearer {secret}".encode())], named

    return prepare


Configuration = tuple[dict[str, str], Prepare | None]


def configurations(redis_url: str | None, customer: str) -> dict[str, Configuration]:
    found: dict[str, Configuration] = {"keyless": ({}, None), "keyed": (keyed_env(), keyed(customer))}
    if redis_url:
        redis = {"CALCIFER_REDIS_URL": redis_url}
        found["keyless-redis"] = (redis, None)
        found["keyed-redis"] = ({**redis, **keyed_env()}, keyed(customer))
    return found


def report(kind: str, requests: int, samples: dict[str, list[float]]) -> str:
    median = {name: statistics.median(values) for name, values in samples.items()}
    rounds = len(next(iter(samples.values())))
    lines = [f"{kind}, {requests} requests per round, {rounds} rounds (median, us CPU per request):"]
    for name, value in median.items():
        spread = f"[{min(samples[name]):.1f}..{max(samples[name]):.1f}]"
        base = name.replace("keyed", "keyless")
        ratio = f"  {value / median[base]:.2f}x {base}" if base != name else ""
        lines.append(f"  {name:14} {value:7.1f} {spread}{ratio}")
    return "\n".join(lines)


SLOWER = 50  # how much slower the app runs under valgrind


def child(name: str, kind: str, requests: int, port: int, redis_url: str, signals: Path) -> None:
    """One configuration's requests, counted by the parent under callgrind (`--instructions`)."""
    env, prepare = configurations(redis_url or None, "bench-customer")[name]

    async def slowed(app: GatewayApp, body: bytes) -> tuple[Headers, bytes]:
        app._authenticator._ttl *= SLOWER
        directory = getattr(app.state, "directory", None)
        if directory is not None:
            directory._ttl *= SLOWER
        return await prepare(app, body) if prepare is not None else ([], body)

    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "bench.db"
        window = lambda app: _counted(app, signals)  # noqa: E731
        uvloop.run(measure(kind, requests, port, database, env, slowed, window))


def instructions(kind: str, requests: int, redis_url: str | None, keep: Path | None) -> str:
    counts: dict[str, int] = {}
    with upstream_port() as port:
        for name in configurations(redis_url, "bench-customer"):
            command = ["bench.keyed", "--child", name, kind, str(requests), str(port), redis_url or ""]
            kept = keep / f"callgrind.{name}" if keep is not None else None
            counts[name] = counted(command, requests, kept)
            print(f"{name}: {counts[name]} instructions per request", file=sys.stderr, flush=True)
    lines = [f"{kind}, {requests} requests per configuration, instructions per request (callgrind):"]
    for name, value in counts.items():
        base = name.replace("keyed", "keyless")
        ratio = f"  {value / counts[base]:.3f}x {base}" if base != name else ""
        lines.append(f"  {name:14} {value:10d}{ratio}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["--child"]:
        child(args[1], args[2], int(args[3]), int(args[4]), args[5], Path(args[6]))
        return 0
    keep = None
    if "--keep" in args:
        at = args.index("--keep")
        keep = Path(args[at + 1])
        del args[at : at + 2]
    counting = "--instructions" in args
    if counting:
        args.remove("--instructions")
    redis_url = os.environ.get("CALCIFER_REDIS_URL") or None
    if "--redis" in args:
        at = args.index("--redis")
        redis_url = args[at + 1] if at + 1 < len(args) else None
        del args[at : at + 2]
        if redis_url is None:
            print(__doc__, file=sys.stderr)
            return 2
    kind = args[0] if args else "json"
    if kind not in ("json", "stream", "both"):
        print(__doc__, file=sys.stderr)
        return 2
    kinds = ["json", "stream"] if kind == "both" else [kind]
    if counting:
        requests = int(args[1]) if len(args) > 1 else 400
        for each in kinds:
            print(instructions(each, requests, redis_url, keep), flush=True)
        return 0
    requests = int(args[1]) if len(args) > 1 else 4000
    rounds = int(args[2]) if len(args) > 2 else 5
    with upstream_port() as port:
        for each in kinds:
            customer = f"bench-customer-{uuid.uuid4().hex[:8]}"
            samples: dict[str, list[float]] = {}
            for _ in range(rounds):
                for name, (env, prepare) in configurations(redis_url, customer).items():
                    samples.setdefault(name, []).append(measure_once(each, requests, port, env, prepare))
            print(report(each, requests, samples), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
