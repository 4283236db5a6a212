"""Status reports: amended versions of a closed month, and months reopened by an officer.

A month's report gets a `version` (1 for the report; 2, 3... for amendments, each with its `reason` and
the version it amends); the bank-month is unique per version. `month_reopenings` holds an officer's
reopening of a bank's closed month until the month's amended report closes it again.

Revision ID: 5f9c2a7e3b18
Revises: 8e2b6d4f1a37
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loanfund.core.db

revision: str = "5f9c2a7e3b18"
down_revision: str | Sequence[str] | None = "8e2b6d4f1a37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("closed_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("status_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", ID, nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("amends_id", ID, nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.drop_constraint("uq_status_reports_bank_month", type_="unique")
        batch_op.create_unique_constraint(
            "uq_status_reports_bank_month_version", ["bank_id", "month_end", "version"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_status_reports_amends_id_status_reports"), "status_reports", ["amends_id"], ["id"]
        )
        batch_op.create_check_constraint(batch_op.f("ck_status_reports_version_positive"), "version >= 1")
        batch_op.create_check_constraint(
            batch_op.f("ck_status_reports_amendment_reason"), "version = 1 OR reason IS NOT NULL"
        )
    with op.batch_alter_table("status_reports", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=ID, server_default=None)

    op.create_table(
        "month_reopenings",
        sa.Column("id", ID, nullable=False),
        sa.Column("bank_id", ID, nullable=False),
        sa.Column("month_end", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reopened_by", ID, nullable=False),
        sa.Column("reopened_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_by_report_id", ID, nullable=True),
        sa.Column("closed_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], name=op.f("fk_month_reopenings_bank_id_banks")),
        sa.ForeignKeyConstraint(
            ["closed_by_report_id"],
            ["status_reports.id"],
            name=op.f("fk_month_reopenings_closed_by_report_id_status_reports"),
        ),
        sa.ForeignKeyConstraint(
            ["reopened_by"], ["staff.id"], name=op.f("fk_month_reopenings_reopened_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_month_reopenings")),
    )
    op.create_index(
        "ix_month_reopenings_open",
        "month_reopenings",
        ["bank_id", "month_end"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_month_reopenings_open", table_name="month_reopenings")
    op.drop_table("month_reopenings")
    # the amendments go (with what they found); each month keeps its first report
    amendments = "SELECT id FROM status_reports WHERE version > 1"
    op.execute(f"DELETE FROM status_report_discrepancies WHERE report_id IN ({amendments})")
    op.execute(f"DELETE FROM status_report_lines WHERE report_id IN ({amendments})")
    op.execute("DELETE FROM status_reports WHERE version > 1")
    with op.batch_alter_table("status_reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_status_reports_amendment_reason"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_status_reports_version_positive"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_status_reports_amends_id_status_reports"), type_="foreignkey")
        batch_op.drop_constraint("uq_status_reports_bank_month_version", type_="unique")
        batch_op.create_unique_constraint("uq_status_reports_bank_month", ["bank_id", "month_end"])
        batch_op.drop_column("reason")
        batch_op.drop_column("amends_id")
        batch_op.drop_column("version")
