"""The spend ledger keeps what a cache hit saved (the cost of the cached answer when it was made).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_MONEY = sa.Numeric(20, 12).with_variant(sa.BigInteger(), "sqlite")  # pico-dollars on SQLite


def upgrade() -> None:
    op.add_column("spend", sa.Column("cost_saved", _MONEY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.drop_column("cost_saved")
