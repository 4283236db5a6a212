"""The programme's integrity rules: early defaults, contracts without an application, grades on record.

* `loans.early_default`: the loan became non-performing within the early-default window of its first
  disbursement (`LOANFUND_EARLY_DEFAULT_MONTHS`, 6). Existing loans are marked from their current
  non-performing date with the default window; a loan cured since keeps no trace of an earlier episode
  (the write path marks every new one).
* `banks.allow_contracts_without_application`: whether a bank may register contracts without an
  application (historical imports); off, as for a new bank, unless an officer allows it.
* `enterprises.grade`: the knowledge-value grade on record, whose credit line bounds a contract without
  an application. Filled from each enterprise's latest evaluated application.

Revision ID: 216806b94482
Revises: 3c5e7a9b1d20
Create Date: 2026-12-06 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "216806b94482"
down_revision: str | Sequence[str] | None = "3c5e7a9b1d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("banks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "allow_contracts_without_application", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grade", sa.String(length=1), nullable=True))
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("early_default", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        window = "first_disbursed_on + interval '6 months'"
    else:
        window = "date(first_disbursed_on, '+6 months')"
    op.execute(
        f"UPDATE loans SET early_default = {'true' if bind.dialect.name == 'postgresql' else '1'} "
        f"WHERE npl_since IS NOT NULL AND first_disbursed_on IS NOT NULL AND npl_since < {window}"
    )
    op.execute(
        "UPDATE enterprises SET grade = (SELECT a.grade FROM applications a WHERE a.enterprise_id = "
        "enterprises.id AND a.grade IS NOT NULL ORDER BY a.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("early_default")
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.drop_column("grade")
    with op.batch_alter_table("banks", schema=None) as batch_op:
        batch_op.drop_column("allow_contracts_without_application")
