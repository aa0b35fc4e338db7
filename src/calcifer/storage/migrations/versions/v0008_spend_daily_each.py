"""`spend_daily_each`: per day, the sums of each key, team, user, customer, tag, model and provider alone
(`dimension`, `value`), that reports by one dimension read; built here from the other rollups.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calcifer.storage.migrations.versions.v0007_spend_daily_models import _SUMS  # as frozen as this one

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

# Each dimension from the narrowest rollup that has it (a row's tags only in spend_daily_tags).
_SOURCES = (
    ("key", "key_id", "spend_daily"),
    ("team", "team", "spend_daily_models"),
    ("user", "end_user", "spend_daily"),
    ("customer", "customer", "spend_daily_customers"),
    ("tag", "tag", "spend_daily_tags"),
    ("model", "model", "spend_daily_models"),
    ("provider", "provider", "spend_daily_models"),
)


def upgrade() -> None:
    op.create_table(
        "spend_daily_each",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("dimension", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _SUMS),
    )
    op.create_index("uq_spend_daily_each", "spend_daily_each", ["dimension", "value", "day"], unique=True)
    sums = ", ".join(f"SUM({name})" for name in _SUMS)
    for dimension, column, table in _SOURCES:
        op.execute(
            f"INSERT INTO spend_daily_each (dimension, value, day, {', '.join(_SUMS)}) "
            f"SELECT '{dimension}', {column}, day, {sums} FROM {table} GROUP BY {column}, day"
        )


def downgrade() -> None:
    op.drop_table("spend_daily_each")
