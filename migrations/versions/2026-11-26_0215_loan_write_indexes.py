"""Loans: fewer index entries per write, room on each page for updated rows.

Every event updates its loan, and an update that changes no indexed column and finds room on the row's
page is written without touching any index (a HOT update). So the indexes on columns that events change
go: `ix_loans_first_disbursed_on` (no query reads by it), `ix_loans_bank_state` and `ix_loans_state_dpd`
(a bank's loans are found through `uq_loans_bank_ref`, the aging report through `ix_loans_overdue`, a
partial index on days past due holding only the loans overdue). The unique application id becomes a
partial unique index, so that loans not from an application (most) have no entry in it. Pages of the
loans table are filled to 70 % on PostgreSQL, leaving room for updated rows.

Revision ID: 7d1e4a6b2c90
Revises: 5b8f3c2a9d41
Create Date: 2026-11-26 02:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d1e4a6b2c90"
down_revision: str | Sequence[str] | None = "5b8f3c2a9d41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FROM_APPLICATION = sa.text("application_id IS NOT NULL")
OVERDUE = sa.text("days_past_due > 0")


def upgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_constraint("uq_loans_application_id", type_="unique")
        batch_op.drop_index("ix_loans_bank_state")
        batch_op.drop_index("ix_loans_state_dpd")
        batch_op.drop_index("ix_loans_first_disbursed_on")
    op.create_index(
        "uq_loans_application_id",
        "loans",
        ["application_id"],
        unique=True,
        postgresql_where=FROM_APPLICATION,
        sqlite_where=FROM_APPLICATION,
    )
    op.create_index(
        "ix_loans_overdue",
        "loans",
        ["days_past_due", "bank_id"],
        postgresql_where=OVERDUE,
        sqlite_where=OVERDUE,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans RESET (fillfactor)")
    op.drop_index("ix_loans_overdue", table_name="loans")
    op.drop_index("uq_loans_application_id", table_name="loans")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.create_index("ix_loans_first_disbursed_on", ["first_disbursed_on"], unique=False)
        batch_op.create_index("ix_loans_state_dpd", ["state", "days_past_due"], unique=False)
        batch_op.create_index("ix_loans_bank_state", ["bank_id", "state"], unique=False)
        batch_op.create_unique_constraint("uq_loans_application_id", ["application_id"])
