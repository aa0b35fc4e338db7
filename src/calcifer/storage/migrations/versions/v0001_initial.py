"""The spend ledger and the virtual keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# What `calcifer.storage.schema` maps them to, frozen here as plain types.
_MONEY = sa.Numeric(20, 12).with_variant(sa.BigInteger(), "sqlite")  # pico-dollars on SQLite
_AMOUNT = sa.Numeric(20, 12).with_variant(sa.Text(), "sqlite")  # decimal text on SQLite
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "spend",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("time", _TIME, nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("end_user", sa.String(), nullable=True),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", _MONEY, nullable=True),
        sa.Column("price_version", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.BigInteger(), nullable=False),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("cut_short", sa.Boolean(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_spend_time", "spend", ["time"])
    op.create_index("ix_spend_key_id_time", "spend", ["key_id", "time"])
    op.create_table(
        "virtual_keys",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        sa.Column("max_budget", _AMOUNT, nullable=True),
        sa.Column("budget_period", sa.String(), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("secret_hash", name="uq_virtual_keys_secret_hash"),
    )


def downgrade() -> None:
    op.drop_table("virtual_keys")
    op.drop_index("ix_spend_key_id_time", table_name="spend")
    op.drop_index("ix_spend_time", table_name="spend")
    op.drop_table("spend")
