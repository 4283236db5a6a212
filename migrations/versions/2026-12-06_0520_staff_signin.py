"""Console sign-in: staff login names, password hashes and one-time-code secrets; server-side sessions;
failed sign-ins (the throttle).

Revision ID: 3c5e7a9b1d24
Revises: 216806b94482
Create Date: 2026-12-06 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import loanfund.core.db

revision: str = "3c5e7a9b1d24"
down_revision: str | Sequence[str] | None = "216806b94482"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAMP = loanfund.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("password_changed_at", STAMP, nullable=True))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", STAMP, nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", ID, nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_staff_login"), ["login"])

    op.create_table(
        "staff_sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", ID, nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("last_seen_at", STAMP, nullable=False),
        sa.Column("revoked_at", STAMP, nullable=True),
        sa.Column("second_factor_pending", sa.Boolean(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name=op.f("fk_staff_sessions_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    op.create_index(op.f("ix_staff_sessions_staff_id"), "staff_sessions", ["staff_id"], unique=False)

    op.create_table(
        "staff_signin_failures",
        sa.Column("id", ID, nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_signin_failures")),
    )
    op.create_index(op.f("ix_staff_signin_failures_login"), "staff_signin_failures", ["login"], unique=False)
    op.create_index(
        op.f("ix_staff_signin_failures_address"), "staff_signin_failures", ["address"], unique=False
    )
    op.create_index(op.f("ix_staff_signin_failures_at"), "staff_signin_failures", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_signin_failures_at"), table_name="staff_signin_failures")
    op.drop_index(op.f("ix_staff_signin_failures_address"), table_name="staff_signin_failures")
    op.drop_index(op.f("ix_staff_signin_failures_login"), table_name="staff_signin_failures")
    op.drop_table("staff_signin_failures")
    op.drop_index(op.f("ix_staff_sessions_staff_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_staff_login"), type_="unique")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret")
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("password_hash")
        batch_op.drop_column("login")
