"""Idempotency keys of bureau staff: a stored first response belongs to a bank or to a staff member.

Revision ID: 8e2b6d4f1a37
Revises: 3c7a1e9d5f20
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e2b6d4f1a37"
down_revision: str | Sequence[str] | None = "3c7a1e9d5f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "bank_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        )
        batch_op.add_column(
            sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_idempotency_keys_staff_id_staff"), "staff", ["staff_id"], ["id"]
        )
        batch_op.create_index("uq_idempotency_keys_staff_key", ["staff_id", "key"], unique=True)


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_keys WHERE bank_id IS NULL")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("uq_idempotency_keys_staff_key")
        batch_op.drop_constraint(batch_op.f("fk_idempotency_keys_staff_id_staff"), type_="foreignkey")
        batch_op.drop_column("staff_id")
        batch_op.alter_column(
            "bank_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        )
