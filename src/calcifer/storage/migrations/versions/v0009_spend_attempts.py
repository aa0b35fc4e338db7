"""The spend ledger keeps each request's upstream attempts, the deployments tried in order, and a
stream's time to first byte (NULL on the rows written before: not recorded then).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("spend", sa.Column("attempts", sa.Integer(), nullable=True))
    op.add_column("spend", sa.Column("deployments", sa.String(), nullable=True))
    op.add_column("spend", sa.Column("ttfb_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.drop_column("ttfb_ms")
        batch.drop_column("deployments")
        batch.drop_column("attempts")
