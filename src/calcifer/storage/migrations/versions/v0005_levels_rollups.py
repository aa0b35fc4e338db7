"""Teams, users, customers, tag budgets and the audit log; how each request ended, its customer and
tags; the daily spend rollups, built here from the rows already in the ledger.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_AMOUNT = sa.Numeric(20, 12).with_variant(sa.Text(), "sqlite")  # decimal text on SQLite
_TIME = sa.DateTime(timezone=True)
_MONEY_COLUMNS = ("cost_hi", "cost_lo", "cost_saved_hi", "cost_saved_lo")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DIMENSIONS = ("day", "key_id", "team", "end_user", "model", "provider")
_COUNTS = (
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
# Rows written before this revision did not say why they were refused: 401/403 were authentication,
# a 429 without tokens a rate limit (budget refusals then were 429s too, and cannot be told apart).
_OUTCOME = """
UPDATE spend SET outcome = CASE
  WHEN status < 400 THEN 'answered'
  WHEN prompt_tokens > 0 OR completion_tokens > 0 THEN 'answered'
  WHEN status IN (401, 403) THEN 'refused_auth'
  WHEN status = 429 THEN 'refused_rate'
  ELSE 'failed' END
"""


def _rollup(name: str, *extra: str) -> None:
    dimensions = (*_DIMENSIONS, *extra)
    op.create_table(
        name,
        sa.Column("id", _ID, primary_key=True),
        *(sa.Column(d, sa.String(), nullable=False) for d in dimensions),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _COUNTS),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in _MONEY_COLUMNS),
    )
    op.create_index(f"uq_{name}", name, list(dimensions), unique=True)
    op.create_index(f"ix_{name}_key_id_day", name, ["key_id", "day"])
    op.create_index(f"ix_{name}_team_day", name, ["team", "day"])


def _backfill(dialect: str, table: str, *extra: str) -> None:
    day = "substr(time, 1, 10)" if dialect == "sqlite" else "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    if dialect == "sqlite":  # pico-dollar integers
        money = [
            f"COALESCE(SUM({m} / 1000000), 0), COALESCE(SUM({m} % 1000000), 0)"
            for m in ("cost", "cost_saved")
        ]
    else:  # NUMERIC(20, 12)
        money = [
            f"COALESCE(SUM(FLOOR({m} * 1000000)), 0), "
            f"COALESCE(SUM(({m} * 1000000 - FLOOR({m} * 1000000)) * 1000000), 0)"
            for m in ("cost", "cost_saved")
        ]
    outcomes = ", ".join(
        f"SUM(CASE WHEN outcome = '{outcome}' THEN 1 ELSE 0 END)"
        for outcome in ("answered", "refused_budget", "refused_rate", "refused_auth", "failed")
    )
    op.execute(
        f"""
        INSERT INTO {table} ({", ".join((*_DIMENSIONS, *extra, *_COUNTS, *_MONEY_COLUMNS))})
        SELECT {day}, COALESCE(key_id, ''), COALESCE(team, ''), COALESCE(end_user, ''), model, provider,
               {"".join(f"COALESCE({name}, ''), " for name in extra)}{outcomes},
               SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cache_write_tokens),
               SUM(reasoning_tokens), COUNT(cost), COUNT(*) - COUNT(cost),
               SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END),
               {", ".join(money)}
        FROM spend
        GROUP BY {day}, COALESCE(key_id, ''), COALESCE(team, ''), COALESCE(end_user, ''), model, provider
                 {"".join(f", COALESCE({name}, '')" for name in extra)}
        """
    )


def upgrade() -> None:
    op.add_column("spend", sa.Column("customer", sa.String(), nullable=True))
    op.add_column("spend", sa.Column("tags", sa.Text(), nullable=True))
    op.add_column("spend", sa.Column("outcome", sa.String(), nullable=False, server_default="answered"))
    op.execute(_OUTCOME)
    _rollup("spend_daily")
    _rollup("spend_daily_customers", "customer")
    _rollup("spend_daily_tags", "customer", "tag")
    _backfill(op.get_bind().dialect.name, "spend_daily")
    _backfill(op.get_bind().dialect.name, "spend_daily_customers", "customer")
    op.add_column("virtual_keys", sa.Column("user_id", sa.String(), nullable=True))
    op.add_column("virtual_keys", sa.Column("team_id", sa.String(), nullable=True))
    op.add_column("virtual_keys", sa.Column("role", sa.String(), nullable=True))
    op.create_table(
        "teams",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("max_budget", _AMOUNT, nullable=True),
        sa.Column("budget_period", sa.String(), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("max_budget", _AMOUNT, nullable=True),
        sa.Column("budget_period", sa.String(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(), primary_key=True),
        sa.Column("user_id", sa.String(), primary_key=True),
        sa.Column("max_budget", _AMOUNT, nullable=True),
        sa.Column("budget_period", sa.String(), nullable=False),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("max_budget", _AMOUNT, nullable=True),
        sa.Column("budget_period", sa.String(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "tag_budgets",
        sa.Column("tag", sa.String(), primary_key=True),
        sa.Column("max_budget", _AMOUNT, nullable=False),
        sa.Column("budget_period", sa.String(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("entity_id", sa.String(), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_log_time", "audit_log", ["time"])
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"])


def downgrade() -> None:
    for table in ("audit_log", "tag_budgets", "customers", "team_members", "users", "teams"):
        op.drop_table(table)
    with op.batch_alter_table("virtual_keys") as batch:
        for column in ("role", "team_id", "user_id"):
            batch.drop_column(column)
    op.drop_table("spend_daily_tags")
    op.drop_table("spend_daily_customers")
    op.drop_table("spend_daily")
    with op.batch_alter_table("spend") as batch:
        for column in ("outcome", "tags", "customer"):
            batch.drop_column(column)
