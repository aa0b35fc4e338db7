"""`spend_blocks_models`: the sums of `spend_daily_models` over aligned blocks of 4 and of 16 days, that
reports by team, model and provider read for the whole blocks of their span; built here from
`spend_daily_models`.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

from calcifer.storage.migrations.versions.v0007_spend_daily_models import (  # as frozen as this one
    _DIMENSIONS,
    _SUMS,
)

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_BLOCK_DAYS = (4, 16)
_EPOCH = date(1970, 1, 1)


def upgrade() -> None:
    op.create_table(
        "spend_blocks_models",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("days", sa.Integer(), nullable=False),
        *(sa.Column(d, sa.String(), nullable=False) for d in _DIMENSIONS),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _SUMS),
    )
    op.create_index("uq_spend_blocks_models", "spend_blocks_models", ["days", *_DIMENSIONS], unique=True)
    # Each day's blocks (their first days: day numbers since 1970-01-01 that are multiples of the block
    # size), in a table of their own for the one INSERT ... SELECT that sums them on either database.
    days = [row[0] for row in op.get_bind().execute(sa.text("SELECT DISTINCT day FROM spend_daily_models"))]
    blocks = op.create_table(
        "spend_blocks_of_days",
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.String(), nullable=False),
    )
    rows = []
    for day in days:
        number = (date.fromisoformat(day) - _EPOCH).days
        for size in _BLOCK_DAYS:
            first = (_EPOCH + timedelta(days=number - number % size)).isoformat()
            rows.append({"day": day, "days": size, "first_day": first})
    op.bulk_insert(blocks, rows)
    coarse = ", ".join(f"d.{name}" for name in _DIMENSIONS[1:])
    op.execute(
        f"INSERT INTO spend_blocks_models (days, {', '.join(_DIMENSIONS)}, {', '.join(_SUMS)}) "
        f"SELECT b.days, b.first_day, {coarse}, {', '.join(f'SUM(d.{name})' for name in _SUMS)} "
        f"FROM spend_daily_models d JOIN spend_blocks_of_days b ON b.day = d.day "
        f"GROUP BY b.days, b.first_day, {coarse}"
    )
    op.drop_table("spend_blocks_of_days")


def downgrade() -> None:
    op.drop_table("spend_blocks_models")
