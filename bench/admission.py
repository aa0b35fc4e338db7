"""`python -m bench.admission [memory|redis] [N] [--team-rates] [--redis URL]`: `SpendControl.admit` and
`close` alone, N times, for a key with a budget and RPM/TPM limits in a team with a budget (and RPM/TPM
with `--team-rates`), naming a customer under the default customer budget; prints the limiter's Redis
commands per request. Count its instructions under callgrind (the counting is switched on around the
N measured iterations, after 200 uncounted ones):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python -m bench.admission redis 500
    grep ^totals: OUT   # divided by N: instructions per admit+close
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from calcifer.app import SystemClock
from calcifer.domain.cost import CostCalculator
from calcifer.domain.keys import VirtualKey
from calcifer.domain.levels import CustomerPolicy, Owners, Team
from calcifer.domain.limits import Limiter
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.spending import SpendControl
from calcifer.domain.types import ChatRequest, Usage
from calcifer.limits.memory import MemoryLimiter
from calcifer.limits.redis import RedisLimiter

BUDGET = Decimal(1_000_000)
LIMIT = 10**9


class _Directory:
    def __init__(self, owners: Owners) -> None:
        self._owners = owners

    async def owners(
        self, team_id: str | None, user_id: str | None, customer: str | None, tags: tuple[str, ...]
    ) -> Owners:
        return self._owners


def _callgrind(state: str) -> None:
    if shutil.which("callgrind_control"):
        subprocess.run(
            ["callgrind_control", "-i", state, str(os.getpid())], check=True, stdout=subprocess.DEVNULL
        )


async def run(kind: str, requests: int, team_rates: bool, redis_url: str) -> float:
    pricing = PricingRegistry()
    pricing.register(
        "m", PricingConfig(input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"))
    )
    limiter: Limiter = (
        MemoryLimiter() if kind == "memory" else RedisLimiter(redis_url, prefix="calcifer-bench:")
    )
    await limiter.start()
    sent = [0]
    client: Any = getattr(limiter, "_client", None)
    if client is not None:
        execute = client.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            sent[0] += 1
            return await execute(*args, **options)

        client.execute_command = counted
    now = datetime.now(UTC)
    rate = LIMIT if team_rates else None
    team = Team(
        "bench", "bench", now, max_budget=BUDGET, budget_period="daily", rpm_limit=rate, tpm_limit=rate
    )
    spend = SpendControl(
        limiter,
        CostCalculator(pricing),
        SystemClock(),
        directory=_Directory(Owners(team)),
        customers=CustomerPolicy(BUDGET, "daily"),
    )
    key = VirtualKey(
        id="bench-key",
        name="bench",
        secret_hash="x",
        created_at=now,
        max_budget=BUDGET,
        budget_period="daily",
        rpm_limit=LIMIT,
        tpm_limit=LIMIT,
        team_id="bench",
    )
    request = ChatRequest(model="m", body={"model": "m"}, max_output_tokens=100)
    usage = Usage(20, 10)

    async def once() -> None:
        admission = await spend.admit(key, request, 400, customer="bench-customer")
        await spend.close(admission, usage, Decimal("0.00004"), delivered=True)

    for _ in range(200):
        await once()
    sent[0] = 0
    _callgrind("on")
    for _ in range(requests):
        await once()
    _callgrind("off")
    await limiter.aclose()
    return sent[0] / requests


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    redis_url = "redis://127.0.0.1:6379/0"
    if "--redis" in args:
        at = args.index("--redis")
        redis_url = args[at + 1]
        del args[at : at + 2]
    team_rates = "--team-rates" in args
    args = [arg for arg in args if arg != "--team-rates"]
    kind = args[0] if args else "memory"
    if kind not in ("memory", "redis"):
        print(__doc__, file=sys.stderr)
        return 2
    requests = int(args[1]) if len(args) > 1 else 1000
    commands = asyncio.run(run(kind, requests, team_rates, redis_url))
    print(
        f"{kind}{' with team rates' if team_rates else ''}: {commands:.2f} limiter Redis commands per request"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
