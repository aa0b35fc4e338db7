"""The tables, once for SQLite and PostgreSQL, and the column types that keep money and time exact.

Money is never a float. PostgreSQL keeps it as `NUMERIC(20, 12)`. SQLite has no exact decimal type (its
NUMERIC affinity turns fractions into REAL), so it keeps ledger costs as whole pico-dollars (an INTEGER,
1e-12 USD, the quantum of `domain.cost`), which SQLite also sums exactly, and budgets as decimal text.
Times are UTC: `TIMESTAMPTZ` on PostgreSQL, fixed-width ISO text on SQLite (ordered as it sorts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

METADATA = MetaData()


def tidy(value: Decimal) -> Decimal:
    """The same number with no trailing zeros (so both databases return the same `Decimal`)."""
    if value == 0:
        return Decimal(0)
    return value.normalize()


def to_pico(value: Decimal) -> int:
    """USD as whole pico-dollars (`domain.cost` already quantises to 1e-12 USD; more is rounded)."""
    return int(value.scaleb(12).to_integral_value(ROUND_HALF_EVEN))


def from_pico(value: int) -> Decimal:
    return tidy(Decimal(value).scaleb(-12))


class Money(TypeDecorator[Decimal]):
    """An exact USD amount that SQL can sum: NUMERIC(20, 12), or INTEGER pico-dollars on SQLite."""

    impl = Numeric(20, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, 12, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> object:
        if value is None:
            return None
        pico = to_pico(value)
        return pico if dialect.name == "sqlite" else Decimal(pico).scaleb(-12)

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_pico(int(str(value)))
        return tidy(Decimal(str(value)))


class Amount(TypeDecorator[Decimal]):
    """An exact USD amount that is never summed (a budget): NUMERIC(20, 12), or decimal text on SQLite."""

    impl = Numeric(20, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(20, 12, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> object:
        if value is None:
            return None
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        return None if value is None else tidy(Decimal(str(value)))


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime in, the same out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the ledger stores UTC, give a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


spend = Table(
    "spend",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("request_id", String(), nullable=False),
    Column("key_id", String(), nullable=True),
    Column("end_user", String(), nullable=True),
    Column("team", String(), nullable=True),
    Column("model", String(), nullable=False),
    Column("provider", String(), nullable=False),
    Column("status", Integer(), nullable=False),
    Column("prompt_tokens", BigInteger(), nullable=False),
    Column("completion_tokens", BigInteger(), nullable=False),
    Column("cached_tokens", BigInteger(), nullable=False),
    Column("cache_write_tokens", BigInteger(), nullable=False),
    Column("reasoning_tokens", BigInteger(), nullable=False),
    Column("cost", Money(), nullable=True),
    Column("price_version", String(), nullable=False),
    Column("latency_ms", BigInteger(), nullable=False),
    Column("streamed", Boolean(), nullable=False),
    Column("cut_short", Boolean(), nullable=False),
    Column("estimated", Boolean(), nullable=False),
    Column("cache_hit", Boolean(), nullable=False),
    Column("cost_saved", Money(), nullable=True),
    Column("customer", String(), nullable=True),
    Column("tags", Text(), nullable=True),  # JSON array, null when the request had none
    Column("outcome", String(), nullable=False, server_default="answered"),
    Column("attempts", Integer(), nullable=True),  # NULL: a row written before they were recorded
    Column("deployments", String(), nullable=True),
    Column("ttfb_ms", BigInteger(), nullable=True),
    Index("ix_spend_time", "time"),
    Index("ix_spend_key_id_time", "key_id", "time"),
    Index("ix_spend_request_id", "request_id"),
)

virtual_keys = Table(
    "virtual_keys",
    METADATA,
    Column("id", String(), primary_key=True),
    Column("name", String(), nullable=False),
    Column("secret_hash", String(), nullable=False),
    Column("max_budget", Amount(), nullable=True),
    Column("budget_period", String(), nullable=False),
    Column("models", Text(), nullable=False),
    Column("rpm_limit", BigInteger(), nullable=True),
    Column("tpm_limit", BigInteger(), nullable=True),
    Column("metadata", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked", Boolean(), nullable=False),
    Column("user_id", String(), nullable=True),
    Column("team_id", String(), nullable=True),
    Column("role", String(), nullable=True),
    UniqueConstraint("secret_hash", name="uq_virtual_keys_secret_hash"),
)

responses = Table(
    "responses",
    METADATA,
    Column("id", String(), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("key_id", String(), nullable=True),
    Column("model", String(), nullable=False),
    Column("provider", String(), nullable=False),
    Column("previous_id", String(), nullable=True),
    Column("input_items", Text(), nullable=False),  # JSON: the items the request added
    Column("body", Text(), nullable=False),  # JSON: the response object
    Index("ix_responses_expires_at", "expires_at"),
)


# Daily rollups, kept by the ledger writer in the transaction that inserts the rows they sum. A
# dimension a row lacks is '' here (so that the unique index, which treats NULLs as distinct, matches
# it); reports turn '' back into null. Money is two integers on both databases, whole micro-dollars
# (`<name>_hi`) and the pico-dollars beyond them (`<name>_lo`): sums of integers stay exact where one
# row of a busy day would pass SQLite's 64-bit integer in pico-dollars ($9.2M).
ROLLUP_DIMENSIONS = ("day", "key_id", "team", "end_user", "model", "provider")
ROLLUP_COUNTS = (
    "requests",
    "refused_budget",
    "refused_rate",
    "refused_auth",
    "failed",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "priced",
    "unpriced",
    "cache_hits",
)
ROLLUP_MONEY = ("cost", "cost_saved")
ROLLUP_MONEY_COLUMNS = tuple(f"{name}_{part}" for name in ROLLUP_MONEY for part in ("hi", "lo"))


def _rollup(
    name: str, dimensions: tuple[str, ...], *ordered: tuple[str, ...], first: Column[int] | None = None
) -> Table:
    """A rollup table: its dimensions (unique together, after the column `first` if given), its sums,
    and an index per `ordered` (which SQLite scans for reports grouped by that index's first columns,
    where it would otherwise sort)."""
    leading = () if first is None else (first,)
    return Table(
        name,
        METADATA,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        *leading,
        *(Column(d, String(), nullable=False) for d in dimensions),
        *(Column(c, BigInteger(), nullable=False) for c in ROLLUP_COUNTS),
        *(Column(m, BigInteger(), nullable=False) for m in ROLLUP_MONEY_COLUMNS),
        Index(f"uq_{name}", *(c.name for c in leading), *dimensions, unique=True),
        *(Index(f"ix_{name}_{'_'.join(columns)}", *columns) for columns in ordered),
    )


# Customers are many: the rollup most reports read leaves them out, and one with them is read only by
# the reports that group or filter by customer (and by tag: tagged rows are few). Keys are many too:
# reports by team, model, provider or day alone read `spend_daily_models`, which leaves out the key
# and the user (tens of times fewer rows than `spend_daily` with a few hundred keys).
_BY_KEY_AND_TEAM = (("key_id", "day"), ("team", "day"))
spend_daily = _rollup("spend_daily", ROLLUP_DIMENSIONS, *_BY_KEY_AND_TEAM)
spend_daily_customers = _rollup("spend_daily_customers", (*ROLLUP_DIMENSIONS, "customer"), *_BY_KEY_AND_TEAM)
spend_daily_tags = _rollup("spend_daily_tags", (*ROLLUP_DIMENSIONS, "customer", "tag"), *_BY_KEY_AND_TEAM)
MODEL_DIMENSIONS = ("day", "team", "model", "provider")
spend_daily_models = _rollup(
    "spend_daily_models", MODEL_DIMENSIONS, ("team", "model", "day"), ("model", "provider", "day")
)
# One dimension at a time: per day, the sums of each key, team, user, customer, tag, model and provider
# (`dimension` names which, `value` is its value), read by reports that group and filter by that one
# dimension (and the day): the top customers of a month read a few thousand rows, not every
# key x customer x model of the month.
spend_daily_each = _rollup("spend_daily_each", ("dimension", "value", "day"))
# The same sums as `spend_daily_models` over blocks of `days` consecutive days (each of `BLOCK_DAYS`),
# `day` being a block's first: blocks of n days start on the days whose number since 1970-01-01 is a
# multiple of n, so any span of days is a few blocks of each size and a few days at its ends (a 31-day
# report by team and model reads at most 7 rows per group, not 31).
BLOCK_DAYS = (4, 16)
spend_blocks_models = _rollup(
    "spend_blocks_models", MODEL_DIMENSIONS, first=Column("days", Integer(), nullable=False)
)

teams = Table(
    "teams",
    METADATA,
    Column("id", String(), primary_key=True),
    Column("name", String(), nullable=False),
    Column("max_budget", Amount(), nullable=True),
    Column("budget_period", String(), nullable=False),
    Column("models", Text(), nullable=False),
    Column("rpm_limit", BigInteger(), nullable=True),
    Column("tpm_limit", BigInteger(), nullable=True),
    Column("metadata", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

users = Table(
    "users",
    METADATA,
    Column("id", String(), primary_key=True),
    Column("name", String(), nullable=True),
    Column("email", String(), nullable=True),
    Column("max_budget", Amount(), nullable=True),
    Column("budget_period", String(), nullable=False),
    Column("metadata", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

team_members = Table(
    "team_members",
    METADATA,
    Column("team_id", String(), primary_key=True),
    Column("user_id", String(), primary_key=True),
    Column("max_budget", Amount(), nullable=True),
    Column("budget_period", String(), nullable=False),
)

customers = Table(
    "customers",
    METADATA,
    Column("id", String(), primary_key=True),
    Column("max_budget", Amount(), nullable=True),
    Column("budget_period", String(), nullable=False),
    Column("blocked", Boolean(), nullable=False),
    Column("metadata", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

tag_budgets = Table(
    "tag_budgets",
    METADATA,
    Column("tag", String(), primary_key=True),
    Column("max_budget", Amount(), nullable=False),
    Column("budget_period", String(), nullable=False),
)

audit_log = Table(
    "audit_log",
    METADATA,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("actor", String(), nullable=False),
    Column("action", String(), nullable=False),
    Column("entity", String(), nullable=False),
    Column("entity_id", String(), nullable=False),
    Column("before", Text(), nullable=True),
    Column("after", Text(), nullable=True),
    Index("ix_audit_log_time", "time"),
    Index("ix_audit_log_entity", "entity", "entity_id"),
)

console_sessions = Table(
    "console_sessions",
    METADATA,
    Column("digest", String(), primary_key=True),  # SHA-256 of the cookie's token, never the token
    Column("key_id", String(), nullable=True),  # the key signed in with; NULL: the master key
    Column("who", String(), nullable=False),
    Column("csrf", String(), nullable=False),
    Column("created", Float(), nullable=False),  # epoch seconds
    Column("seen", Float(), nullable=False),
    Index("ix_console_sessions_seen", "seen"),
)
