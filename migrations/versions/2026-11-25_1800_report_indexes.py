"""Index for the programme-wide aging report: overdue and non-performing loans by days past due.

Revision ID: 928cca1ed436
Revises: 1816116d5891
Create Date: 2026-11-25 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "928cca1ed436"
down_revision: str | Sequence[str] | None = "1816116d5891"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_loans_state_dpd", "loans", ["state", "days_past_due"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_loans_state_dpd", table_name="loans")
