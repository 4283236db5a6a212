"""Claims of early defaults: the flag copied from the loan when filed, and the reviewer's note at approval.

Existing claims take their loan's `early_default`.

Revision ID: 9a4e1c7b2d63
Revises: 3f6c2d8e1a57
Create Date: 2026-12-06 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a4e1c7b2d63"
down_revision: str | Sequence[str] | None = "3f6c2d8e1a57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("early_default", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("review_note", sa.Text(), nullable=True))
    op.execute(
        "UPDATE claims SET early_default = "
        "(SELECT loans.early_default FROM loans WHERE loans.id = claims.loan_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.drop_column("review_note")
        batch_op.drop_column("early_default")
