"""Fund ledger: accounts and their running balances, transactions and entries, contributions.

Seeds the fixed accounts of the chart (docs/adr/0004-fund-ledger.md) with zero balances, so that the
balance rows every posting locks exist from the start; per-bank accounts are created on first use.

Revision ID: 9c04cbdccf8f
Revises: 7118b8f65699
Create Date: 2026-11-25 17:40:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import loanfund.core.db

revision: str = "9c04cbdccf8f"
down_revision: str | Sequence[str] | None = "7118b8f65699"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FEN = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# code, category, name, type — the fixed accounts of loanfund.fund.chart, all no-negative.
FIXED_ACCOUNTS = [
    ("fund_cash:available", "fund_cash", "Fund cash, available", "asset"),
    ("fund_cash:reserved", "fund_cash", "Fund cash reserved for approved claims", "asset"),
    ("contrib:city", "contrib", "Contributions from the city budget", "equity"),
    ("contrib:district", "contrib", "Contributions from the district budget", "equity"),
    ("interest_income", "interest_income", "Interest on the fund's account", "income"),
]


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "asset",
                "liability",
                "equity",
                "income",
                "expense",
                name="accounttype",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("bank_id", ID, nullable=True),
        sa.Column("no_negative", sa.Boolean(), nullable=False),
        sa.Column("created_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["banks.id"], name=op.f("fk_ledger_accounts_bank_id_banks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_accounts_bank_id"), ["bank_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_accounts_category"), ["category"], unique=False)

    op.create_table(
        "account_balances",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("debits_fen", FEN, nullable=False),
        sa.Column("credits_fen", FEN, nullable=False),
        sa.Column("updated_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credits_fen >= 0", name=op.f("ck_account_balances_credits_nonneg")),
        sa.CheckConstraint("debits_fen >= 0", name=op.f("ck_account_balances_debits_nonneg")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_account_balances_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_balances")),
    )

    op.create_table(
        "ledger_transactions",
        sa.Column("id", ID, nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "contribution",
                "reserve",
                "release",
                "compensation_payment",
                "recovery_recognised",
                "recovery_settled",
                "interest",
                "reversal",
                name="transactionkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("posted_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("reference_type", sa.String(length=32), nullable=True),
        sa.Column("reference_id", sa.String(length=64), nullable=True),
        sa.Column("reverses_id", ID, nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "(reference_type IS NULL) = (reference_id IS NULL)",
            name=op.f("ck_ledger_transactions_reference_pair"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_transactions_reverses_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_transactions_reverses_id")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_transactions_kind"), ["kind"], unique=False)
        batch_op.create_index(
            "ix_ledger_transactions_reference", ["reference_type", "reference_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ledger_transactions_value_date"), ["value_date"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("transaction_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column(
            "side", sa.Enum("debit", "credit", name="side", native_enum=False, length=8), nullable=False
        ),
        sa.Column("amount_fen", FEN, nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_ledger_entries_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_entries_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_entries_account_value_date", ["account_id", "value_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "contributions",
        sa.Column("id", ID, nullable=False),
        sa.Column(
            "source",
            sa.Enum("city", "district", name="contributionsource", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("amount_fen", FEN, nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("budget_doc_no", sa.String(length=64), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("transaction_id", ID, nullable=False),
        sa.Column("reversal_transaction_id", ID, nullable=True),
        sa.Column("created_at", loanfund.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_contributions_amount_positive")),
        sa.ForeignKeyConstraint(
            ["reversal_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_contributions_reversal_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_contributions_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contributions")),
        sa.UniqueConstraint("reversal_transaction_id", name=op.f("uq_contributions_reversal_transaction_id")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_contributions_transaction_id")),
    )
    with op.batch_alter_table("contributions", schema=None) as batch_op:
        batch_op.create_index("ix_contributions_value_date", ["value_date"], unique=False)
        # A budget document number is unique among the contributions that stand (not reversed).
        batch_op.create_index(
            "uq_contributions_budget_doc_no_standing",
            ["budget_doc_no"],
            unique=True,
            sqlite_where=sa.text("reversal_transaction_id IS NULL"),
            postgresql_where=sa.text("reversal_transaction_id IS NULL"),
        )

    now = datetime.now(UTC)
    accounts = sa.table(
        "ledger_accounts",
        sa.column("id", ID),
        sa.column("code", sa.String),
        sa.column("category", sa.String),
        sa.column("name", sa.String),
        sa.column("type", sa.String),
        sa.column("no_negative", sa.Boolean),
        sa.column("created_at", loanfund.core.db.UTCDateTime()),
    )
    balances = sa.table(
        "account_balances",
        sa.column("account_id", ID),
        sa.column("debits_fen", FEN),
        sa.column("credits_fen", FEN),
        sa.column("updated_at", loanfund.core.db.UTCDateTime()),
    )
    op.bulk_insert(
        accounts,
        [
            {"code": c, "category": cat, "name": n, "type": t, "no_negative": True, "created_at": now}
            for c, cat, n, t in FIXED_ACCOUNTS
        ],
    )
    op.execute(
        balances.insert().from_select(
            ["account_id", "debits_fen", "credits_fen", "updated_at"],
            sa.select(
                accounts.c.id,
                sa.literal(0, FEN),
                sa.literal(0, FEN),
                sa.literal(now, loanfund.core.db.UTCDateTime()),
            ),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("contributions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_contributions_budget_doc_no_standing",
            sqlite_where=sa.text("reversal_transaction_id IS NULL"),
            postgresql_where=sa.text("reversal_transaction_id IS NULL"),
        )
        batch_op.drop_index("ix_contributions_value_date")
    op.drop_table("contributions")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index("ix_ledger_entries_account_value_date")
    op.drop_table("ledger_entries")

    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_value_date"))
        batch_op.drop_index("ix_ledger_transactions_reference")
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_kind"))
    op.drop_table("ledger_transactions")

    op.drop_table("account_balances")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_category"))
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_bank_id"))
    op.drop_table("ledger_accounts")
