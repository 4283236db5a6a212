"""Risk analytics: the stress test runs and the banks' monthly risk ratings.

`stress_test_runs` keeps every run of the fund's stress test with the inputs it used (calibrated ones
included) and what it found. `bank_ratings` holds one rating per bank and month, stored when the month
closes (one row per bank and month; the month index serves the table of a month).

Revision ID: 3f6c2d8e1a57
Revises: 842c22756252
Create Date: 2026-12-06 03:45:06.328092
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loanfund.core.db

revision: str = "3f6c2d8e1a57"
down_revision: str | Sequence[str] | None = "842c22756252"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stress_test_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("preset", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("calibration", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_kind", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_by_name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stress_test_runs")),
    )
    op.create_table(
        "bank_ratings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bank_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("rating", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("driver", sa.String(length=32), nullable=False),
        sa.Column("peers", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("computed_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("computed_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], name=op.f("fk_bank_ratings_bank_id_banks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_ratings")),
        sa.UniqueConstraint("bank_id", "month", name="uq_bank_ratings_bank_month"),
    )
    with op.batch_alter_table("bank_ratings", schema=None) as batch_op:
        batch_op.create_index("ix_bank_ratings_month", ["month"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bank_ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_ratings_month")

    op.drop_table("bank_ratings")
    op.drop_table("stress_test_runs")
