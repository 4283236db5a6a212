"""Running totals of the portfolio aggregates per bank, and an index on the daily rows' day: the present
is read from one row per bank, an earlier date as the totals less the days after it.

Revision ID: 5b8f3c2a9d41
Revises: e68ede1c9410
Create Date: 2026-11-25 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b8f3c2a9d41"
down_revision: str | Sequence[str] | None = "e68ede1c9410"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = (
    "disbursed_fen",
    "principal_repaid_fen",
    "interest_repaid_fen",
    "loans_started",
    "d_covered_fen",
    "d_overdue_fen",
    "d_npl_fen",
    "d_compensated_fen",
)


def upgrade() -> None:
    op.create_table(
        "portfolio_totals",
        sa.Column("bank_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        *(
            sa.Column(f, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)
            for f in FIGURES
        ),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], name=op.f("fk_portfolio_totals_bank_id_banks")),
        sa.PrimaryKeyConstraint("bank_id", name=op.f("pk_portfolio_totals")),
    )
    op.create_index("ix_portfolio_daily_day", "portfolio_daily", ["day"], unique=False)
    sums = ", ".join(f"sum({f})" for f in FIGURES)
    op.execute(
        f"INSERT INTO portfolio_totals (bank_id, {', '.join(FIGURES)})"
        f" SELECT bank_id, {sums} FROM portfolio_daily GROUP BY bank_id"
    )


def downgrade() -> None:
    op.drop_index("ix_portfolio_daily_day", table_name="portfolio_daily")
    op.drop_table("portfolio_totals")
