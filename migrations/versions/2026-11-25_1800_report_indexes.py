"""Index for the programme-wide aging report: overdue and non-performing loans by days past due.

Revision ID: e68ede1c9410
Revises: d67d15b0af03
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e68ede1c9410"
down_revision: str | Sequence[str] | None = "d67d15b0af03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_loans_state_dpd", "loans", ["state", "days_past_due"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_loans_state_dpd", table_name="loans")
