"""Idempotency keys of the public scope: the keyless application (API and portal form).

A key of neither a bank nor a staff member belongs to the public scope, unique among public keys through a
partial unique index; bank and staff keys stay unique per owner (`bank_id` became nullable with the staff
keys).

Revision ID: 3c5e7a9b1d20
Revises: 5f9c2a7e3b18
Create Date: 2026-12-06 05:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c5e7a9b1d20"
down_revision: str | Sequence[str] | None = "5f9c2a7e3b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC = sa.text("bank_id IS NULL AND staff_id IS NULL")


def upgrade() -> None:
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
    op.execute("DELETE FROM idempotency_keys WHERE bank_id IS NULL AND staff_id IS NULL")
