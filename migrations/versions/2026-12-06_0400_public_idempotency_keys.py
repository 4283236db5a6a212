"""Idempotency keys of the public scope: the keyless application (API and portal form).

A key with no bank (`bank_id` NULL) belongs to the public scope, unique among public keys through a
partial unique index; bank keys stay unique per bank.

Revision ID: 3c5e7a9b1d20
Revises: 7d1e4a6b2c90
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c5e7a9b1d20"
down_revision: str | Sequence[str] | None = "7d1e4a6b2c90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC = sa.text("bank_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "bank_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        )
    op.create_index(
        "uq_idempotency_keys_public_key",
        "idempotency_keys",
        ["key"],
        unique=True,
        sqlite_where=PUBLIC,
        postgresql_where=PUBLIC,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_idempotency_keys_public_key",
        table_name="idempotency_keys",
        sqlite_where=PUBLIC,
        postgresql_where=PUBLIC,
    )
    op.execute("DELETE FROM idempotency_keys WHERE bank_id IS NULL")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.alter_column(
            "bank_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        )
