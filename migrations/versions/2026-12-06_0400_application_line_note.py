"""Applications: why a requested amount above the credit line in force cannot all be approved.

`line_note` is set when the requested amount is above the credit line in force (and cleared when an
officer's override makes it fit). Existing applications get theirs here.

Revision ID: 3c7a1e9d5f20
Revises: 7d1e4a6b2c90
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c7a1e9d5f20"
down_revision: str | Sequence[str] | None = "7d1e4a6b2c90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _yuan(fen: int) -> str:
    q, r = divmod(fen, 100)
    return f"{q:,}.{r:02d} yuan"


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("line_note", sa.Text(), nullable=True))
    apps = sa.table(
        "applications",
        sa.column("id", sa.Integer),
        sa.column("requested_amount_fen", sa.BigInteger),
        sa.column("credit_line_fen", sa.BigInteger),
        sa.column("grade", sa.String),
        sa.column("line_note", sa.Text),
    )
    bind = op.get_bind()
    above = bind.execute(
        sa.select(apps.c.id, apps.c.requested_amount_fen, apps.c.credit_line_fen, apps.c.grade).where(
            apps.c.credit_line_fen.is_not(None), apps.c.requested_amount_fen > apps.c.credit_line_fen
        )
    ).all()
    for app_id, requested, line, grade in above:
        note = (
            f"The requested {_yuan(requested)} is above the credit line of {_yuan(line)} (grade {grade}); "
            f"a bank may approve at most {_yuan(line)}"
        )
        bind.execute(sa.update(apps).where(apps.c.id == app_id).values(line_note=note))


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("line_note")
