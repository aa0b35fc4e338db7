"""`spend_daily_models`: the daily rollup per (day, team, model, provider), without the key and the user,
that reports by team, model, provider or day read; built here from `spend_daily`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_DIMENSIONS = ("day", "team", "model", "provider")
_SUMS = (
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
    "cost_hi",
    "cost_lo",
    "cost_saved_hi",
    "cost_saved_lo",
)


def upgrade() -> None:
    op.create_table(
        "spend_daily_models",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        *(sa.Column(d, sa.String(), nullable=False) for d in _DIMENSIONS),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _SUMS),
    )
    op.create_index("uq_spend_daily_models", "spend_daily_models", list(_DIMENSIONS), unique=True)
    # SQLite scans these in the order of a report grouped by team (and model) or by model, not sorting.
    op.create_index("ix_spend_daily_models_team_model_day", "spend_daily_models", ["team", "model", "day"])
    op.create_index(
        "ix_spend_daily_models_model_provider_day", "spend_daily_models", ["model", "provider", "day"]
    )
    # Sums of the key-level sums: money stays two exact integers (the pico-dollar part may pass a
    # million once summed; readers add the parts as the writer's upserts already leave them).
    dimensions = ", ".join(_DIMENSIONS)
    op.execute(
        f"INSERT INTO spend_daily_models ({dimensions}, {', '.join(_SUMS)}) "
        f"SELECT {dimensions}, {', '.join(f'SUM({name})' for name in _SUMS)} "
        f"FROM spend_daily GROUP BY {dimensions}"
    )


def downgrade() -> None:
    op.drop_table("spend_daily_models")
