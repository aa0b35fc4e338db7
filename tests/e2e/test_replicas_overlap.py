"""Every request touches six levels at once - its key, its team, its user, the user's member budget in
that team, its customer and its tags - across two `calcifer serve` replicas on PostgreSQL + Redis.

Six groups of two keys each have one tight level, a different one per group (key, team, user, member,
customer, tag); every other level they touch is shared and roomy. About 300 concurrent requests,
streamed and not, spread over both replicas: every 429 names exactly the group's tight level, no level
ends over its cap, no refusal leaves a held amount behind at the levels that did fit, and each level's
Redis counter equals the ledger's spend for it (read through `/v1/spend`). Then probes with keys whose
requests meet several full levels, sent one at a time so the counters are known: each is refused by the
first full level in the documented order (key, team, user, member, customer, tags), saying exactly what
is left there, and moves no counter; one that fits moves every level it touches by its cost."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import redis

from calcifer.domain.limits import from_units
from tests.e2e.load import REDIS_URL, Sent, delete_redis_keys, fire, ledger_rows
from tests.e2e.process import GatewayProcess
from tests.e2e.test_replicas import MASTER, admin, echo_chat, shared, start_replicas  # noqa: F401
from tests.e2e.test_replicas_levels import COST_EACH, PER_KEY_CONCURRENCY, spend_report

pytestmark = pytest.mark.timeout(180)

ROOMY = Decimal("1")  # never the binding level: 1 / 0.0085 worst cases is more than ever in flight
TIGHT = Decimal("0.02")  # a shared level's cap: a dozen $0.001 answers behind ~$0.009 holds
KEY_TIGHT = Decimal("0.015")
PER_KEY = 24
GROUPS = ("key", "team", "user", "member", "customer", "tag")
REFUSAL = re.compile(
    r"Budget exceeded: \$([\d.]+) of the (?:(\w+) budget of '([^']+)'|budget) remains, "
    r"and this request may cost up to \$([\d.]+)\."
)


@dataclass(frozen=True, slots=True)
class Level:
    kind: str
    owner: str
    budget_key: str  # the Redis counter's name, as `calcifer.domain.levels.holds` makes it
    cap: Decimal
    report: tuple[tuple[str, str], ...]  # the `/v1/spend` filters that sum what the counter covers


@dataclass
class Caller:
    group: str
    key_id: str
    secret: str
    levels: list[Level]  # in the order a refusal names the first that is full
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    requests: list[tuple[Sent, dict[str, object]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str
    owner: str
    remaining: Decimal
    requested: Decimal


@dataclass(frozen=True, slots=True)
class State:
    total: Decimal
    held: Decimal
    settled: Decimal
    holds: int


def refusal(sent: Sent) -> Refusal:
    message = json.loads(sent.body)["error"]["message"]
    found = REFUSAL.fullmatch(message)
    assert found is not None, message
    remaining, kind, owner, requested = found.groups()
    return Refusal(kind or "key", owner or "", Decimal(remaining), Decimal(requested))


def states(levels: list[Level]) -> dict[str, State]:
    """Each level's counter as Redis holds it: total = settled + held, and the open holds."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    found = {}
    try:
        for level in levels:
            name = f"calcifer:budget:{{budgets}}:{level.budget_key}|total"
            fields = client.hgetall(name)
            units = {f: int(fields.get(f, 0)) for f in ("total", "held", "settled")}
            total, held, settled = (from_units(units[f]) for f in ("total", "held", "settled"))
            found[level.budget_key] = State(total, held, settled, int(client.zcard(name + ":holds")))
    finally:
        client.close()
    return found


class Fleet:
    """The teams, users, members, customers and tag budgets of one run, and keys made from them."""

    def __init__(self, base: str, run: str) -> None:
        self.base = base
        self.run = run
        self.levels: dict[str, Level] = {}
        self.members: dict[tuple[str, str], Decimal] = {}

    def _add(self, level: Level) -> Level:
        self.levels.setdefault(level.budget_key, level)
        return level

    async def build(self) -> None:
        run, total = self.run, {"budget_period": "total"}
        for team in ("big", "tight"):
            cap = TIGHT if team == "tight" else ROOMY
            body = {"id": f"t{team}-{run}", "name": team, "max_budget": str(cap), **total}
            await admin("POST", self.base + "/admin/teams", body)
        for group in GROUPS:
            user, cap = f"u{group}-{run}", TIGHT if group == "user" else ROOMY
            await admin("POST", self.base + "/admin/users", {"id": user, "max_budget": str(cap), **total})
            team = f"t{'tight' if group == 'team' else 'big'}-{run}"
            cap = TIGHT if group == "member" else ROOMY
            url = f"{self.base}/admin/teams/{team}/members/{user}"
            await admin("PUT", url, {"max_budget": str(cap), **total})
            self.members[(team, user)] = cap
        for customer, cap in ((f"cbig-{run}", ROOMY), (f"ctight-{run}", TIGHT)):
            body = {"id": customer, "max_budget": str(cap), **total}
            await admin("POST", self.base + "/admin/customers", body)
        for tag, cap in ((f"pbig-{run}", ROOMY), (f"ptight-{run}", TIGHT)):
            await admin("PUT", f"{self.base}/admin/tags/{tag}", {"max_budget": str(cap), **total})

    async def key(
        self,
        name: str,
        key_cap: Decimal,
        team: str,
        user: str,
        customer: str,
        tags: list[str],
        *,
        in_key: bool,
    ) -> Caller:
        """A key of `user` in `team`; its requests name `customer` and `tags` by header, or (`in_key`)
        the customer by OpenAI's `user` field and the tags in the key's metadata."""
        run = self.run
        team_id, user_id, customer_id = f"t{team}-{run}", f"u{user}-{run}", f"c{customer}-{run}"
        tag_ids = [f"p{tag}-{run}" for tag in tags]
        body: dict[str, object] = {
            "name": name,
            "models": ["echo4"],
            "team_id": team_id,
            "user_id": user_id,
            "max_budget": str(key_cap),
            "budget_period": "total",
        }
        if in_key:
            body["metadata"] = {"tags": tag_ids}
        created = await admin("POST", self.base + "/admin/keys", body)
        key_id = str(created["id"])
        caps = {"big": ROOMY, "tight": TIGHT}
        found: list[tuple[str, str, str, Decimal, tuple[tuple[str, str], ...]]] = [
            ("key", key_id, key_id, key_cap, (("key_id", key_id),))
        ]
        found.append(("team", team_id, f"team:{team_id}", caps[team], (("team", team_id),)))
        user_cap = TIGHT if user == "user" else ROOMY
        found.append(("user", user_id, f"user:{user_id}", user_cap, (("user", user_id),)))
        member = self.members.get((team_id, user_id))
        if member is not None:
            owner, report = f"{team_id}/{user_id}", (("team", team_id), ("user", user_id))
            found.append(("member", owner, f"member:{owner}", member, report))
        customer_filter = (("customer", customer_id),)
        found.append(("customer", customer_id, f"customer:{customer_id}", caps[customer], customer_filter))
        for tag in sorted(tag_ids):
            cap = TIGHT if tag.startswith("ptight") else ROOMY
            found.append(("tag", tag, f"tag:{tag}", cap, (("tag", tag),)))
        levels = [self._add(Level(*row)) for row in found]
        caller = Caller(name, key_id, str(created["key"]), levels)
        if in_key:
            caller.extra["user"] = customer_id
        else:
            caller.headers = {"x-calcifer-customer": customer_id, "x-calcifer-tags": ",".join(tag_ids)}
        return caller


async def probe(url: str, caller: Caller, name: str) -> Sent:
    sent = Sent(name, url + "/v1/chat/completions", False, headers=caller.headers)
    await fire([(sent, echo_chat(False, caller.extra))], caller.secret, concurrency=1, timeout=30)
    return sent


async def test_overlapping_levels_refuse_at_the_first_full_one(shared: dict[str, str]) -> None:  # noqa: F811
    gateways = await start_replicas(shared, 2)
    run = uuid.uuid4().hex[:8]
    fleet = Fleet(gateways[0].url, run)
    callers: list[Caller] = []
    probes: list[tuple[Caller, Sent, dict[str, State], dict[str, State]]] = []
    try:
        await fleet.build()
        for group in GROUPS:
            for k in range(2):
                callers.append(
                    await fleet.key(
                        group,
                        KEY_TIGHT if group == "key" else ROOMY,
                        "tight" if group == "team" else "big",
                        group,
                        "tight" if group == "customer" else "big",
                        ["big", "tight"] if group == "tag" else ["big"],
                        in_key=k == 1,
                    )
                )
        loads = []
        for k, caller in enumerate(callers):
            for i in range(PER_KEY):
                stream = (i // 2) % 2 == 1  # both replicas get both kinds
                url = gateways[(i + k) % 2].url + "/v1/chat/completions"
                one = Sent(f"overlap-{run}-{k:02d}-{i:03d}", url, stream, headers=caller.headers)
                caller.requests.append((one, echo_chat(stream, caller.extra)))
            loads.append(fire(caller.requests, caller.secret, concurrency=PER_KEY_CONCURRENCY, timeout=90))
        await asyncio.gather(*loads)
        after_load = states(list(fleet.levels.values()))

        # Keys that meet several tight levels at once, one request at a time: nothing else is in flight,
        # so the counters read before a probe are exactly what the gateway checks it against.
        shapes = [  # the key's budget, its team, its user, its customer, its tags
            (Decimal("0.005"), "tight", "user", "tight", ["big", "tight"]),  # key, team, user, ...
            (ROOMY, "tight", "user", "tight", ["big", "tight"]),  # team, user, customer, tag
            (ROOMY, "big", "user", "tight", ["big", "tight"]),  # user, customer, tag
            (ROOMY, "big", "member", "tight", ["big", "tight"]),  # member, customer, tag
            (ROOMY, "big", "key", "tight", ["tight"]),  # customer, tag
            (ROOMY, "big", "key", "big", ["tight"]),  # tag
            (ROOMY, "big", "key", "big", ["big"]),  # nothing full: answered
        ]
        for n, (key_cap, team, user, customer, tags) in enumerate(shapes):
            caller = await fleet.key(f"probe-{n}", key_cap, team, user, customer, tags, in_key=False)
            before = states(caller.levels)
            answer = await probe(gateways[n % 2].url, caller, f"probe-{run}-{n}")
            probes.append((caller, answer, before, states(caller.levels)))
    finally:
        for gateway in gateways:
            gateway.terminate()
        logs = [await asyncio.to_thread(gateway.output) for gateway in gateways]

    levels = list(fleet.levels.values())
    reader = await asyncio.to_thread(GatewayProcess, shared)
    try:
        reports = {
            level.budget_key: await spend_report(reader.url, group_by="model", **dict(level.report))
            for level in levels
        }
        everything = await spend_report(reader.url, group_by="model")
    finally:
        logs.append(await asyncio.to_thread(reader.stop))
    final = states(levels)
    for level in levels:
        delete_redis_keys(f"calcifer:budget:{{budgets}}:{level.budget_key}|*")

    # The load: every 429 names the group's one tight level, with less left there than it asked for.
    sent = [s for c in callers for s, _ in c.requests]
    assert [s.error for s in sent if not s.answered] == []
    assert Counter(s.status for s in sent).keys() == {200, 429}, Counter(s.status for s in sent)
    assert all(s.complete() for s in sent if s.status == 200)
    ok = [s for s in sent if s.status == 200]
    assert {s.stream for s in ok} == {True, False} and {s.url for s in ok} == {s.url for s in sent}
    summary = []
    for group in GROUPS:
        mine = [c for c in callers if c.group == group]
        refused = []
        for caller in mine:
            (tight,) = [lv for lv in caller.levels if lv.cap < ROOMY]
            assert tight.kind == group
            for r in [refusal(s) for s, _ in caller.requests if s.status == 429]:
                assert (r.kind, r.owner or tight.owner) == (tight.kind, tight.owner), (caller.group, r)
                assert r.remaining < r.requested and r.remaining <= tight.cap, (caller.group, r)
                refused.append(r)
        answered = sum(s.status == 200 for c in mine for s, _ in c.requests)
        assert answered and refused, group
        summary.append(f"{group} {answered} ok / {len(refused)} refused")

    # No refusal left a hold behind anywhere, and every level's counter settled to exactly its spend.
    for state in after_load.values():
        assert (state.held, state.holds, state.total) == (Decimal(0), 0, state.settled), state
    for level in levels:
        assert final[level.budget_key].settled <= level.cap, level
        report = reports[level.budget_key]
        spent = report["cost"] or Decimal(0)
        assert spent == final[level.budget_key].settled == final[level.budget_key].total, level
        touching = [s for c, s in _sent_by(callers, probes) if level in c.levels]
        assert report["requests"] == sum(s.status == 200 for s in touching), level
        refused_here = sum(s.status == 429 for s in touching)
        assert report["refused"] == {"budget": refused_here, "rate_limit": 0, "auth": 0}, level

    # The probes: refused by the first level in order that cannot fit the worst case, moving nothing.
    worst = {refusal(s).requested for _, s, _, _ in probes if s.status == 429}
    assert len(worst) == 1, worst  # the probes' bodies differ by nothing the worst case depends on
    requested = worst.pop()
    named = []
    for caller, probe_sent, before, after in probes:
        full = [lv for lv in caller.levels if lv.cap - before[lv.budget_key].total < requested]
        if not full:
            assert probe_sent.status == 200, probe_sent.body
            assert all(after[b].settled == before[b].settled + COST_EACH for b in before), (before, after)
            named.append("answered")
            continue
        assert probe_sent.status == 429, (caller.group, probe_sent.body)
        got, first = refusal(probe_sent), full[0]
        assert (got.kind, got.owner or first.owner) == (first.kind, first.owner), (got, full)
        assert got.remaining == max(first.cap - before[first.budget_key].total, Decimal(0))
        assert after == before
        named.append(first.kind)
    assert len(set(named)) >= 4, named  # different levels ran out first for different probes

    # The ledger: one row per request, its total what the key counters (every key has a budget) settled to.
    rows = await ledger_rows(shared["CALCIFER_DATABASE_URL"], shared["CALCIFER_DATABASE_SCHEMA"])
    everyone = [s for _, s in _sent_by(callers, probes)]
    assert Counter(r.request_id for r in rows) == Counter(s.request_id for s in everyone)
    answered_all = sum(s.status == 200 for s in everyone)
    key_total = sum(final[lv.budget_key].settled for lv in levels if lv.kind == "key")
    assert everything["cost"] == COST_EACH * answered_all == key_total
    for log in logs:
        assert "dropped" not in log and "Traceback" not in log
    print(f"\noverlapping levels over two replicas: {len(sent)} sent; {'; '.join(summary)}; probes {named}")


def _sent_by(
    callers: list[Caller], probes: list[tuple[Caller, Sent, dict[str, State], dict[str, State]]]
) -> list[tuple[Caller, Sent]]:
    return [(c, s) for c in callers for s, _ in c.requests] + [(c, s) for c, s, _, _ in probes]
