"""An index on the ledger's request ids: one request's row found by its id (`/admin/requests/{id}`).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_spend_request_id", "spend", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_spend_request_id", table_name="spend")
