"""`loanfund fund reconcile`: exit 0 when the ledger reconciles, 1 on any difference."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loanfund.cli import app
from loanfund.core.config import get_settings
from loanfund.core.db import make_engine
from loanfund.core.session import transaction
from loanfund.fund import contributions
from loanfund.fund.models import ContributionSource
from tests.factories import TEST_ACTOR

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOANFUND_DATABASE_URL", url)
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


def test_reconcile_command(cli_db: str) -> None:
    engine = make_engine(get_settings())
    with transaction(engine) as session:
        contributions.record_contribution(
            session,
            TEST_ACTOR,
            source=ContributionSource.city,
            amount_fen=400_000_000,
            value_date=date(2021, 3, 1),
            budget_doc_no="CLI-1",
        )
    r = runner.invoke(app, ["fund", "reconcile"])
    assert r.exit_code == 0, r.output
    assert "debits 4,000,000.00 yuan, credits 4,000,000.00 yuan" in r.output
    assert "ledger reconciles" in r.output

    with transaction(engine) as session:  # an UPDATE of a balance without the entry that explains it
        session.execute(
            text("UPDATE account_balances SET credits_fen = credits_fen + 1 WHERE account_id = 3")
        )
    engine.dispose()
    r = runner.invoke(app, ["fund", "reconcile"])
    assert r.exit_code == 1
    assert "difference contrib:city" in r.output
