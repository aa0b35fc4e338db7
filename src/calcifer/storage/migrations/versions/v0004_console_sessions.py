"""Console sessions, shared by every worker and replica.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("digest", sa.String(), primary_key=True),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("csrf", sa.String(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
    )
    op.create_index("ix_console_sessions_seen", "console_sessions", ["seen"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_seen", table_name="console_sessions")
    op.drop_table("console_sessions")
