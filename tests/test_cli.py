"""The `loanfund` command, as scripts use it: the new key alone on the last line."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loanfund.cli import app
from loanfund.core.config import get_settings

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOANFUND_DATABASE_URL", url)
    get_settings.cache_clear()
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    yield url
    get_settings.cache_clear()


def test_bank_and_staff_create_print_the_key_last(cli_db: str) -> None:
    r = runner.invoke(app, ["bank", "create", "--name", "黔江农商行", "--code", "QJRCB"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1].startswith("lfb_")
    r = runner.invoke(app, ["staff", "create", "--name", "李经办", "--role", "officer"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1].startswith("lfs_")
    r = runner.invoke(app, ["bank", "key", "issue", "--code", "QJRCB"])
    assert r.output.strip().splitlines()[-1].startswith("lfb_")
    r = runner.invoke(app, ["bank", "key", "revoke", "--key-id", "1"])
    assert r.exit_code == 0
    assert "revoked" in r.output


def test_duplicate_bank_fails_cleanly(cli_db: str) -> None:
    runner.invoke(app, ["bank", "create", "--name", "a", "--code", "DUP"])
    r = runner.invoke(app, ["bank", "create", "--name", "a", "--code", "DUP"])
    assert r.exit_code == 1


def test_portfolio_verify_and_idempotency_purge(cli_db: str) -> None:
    r = runner.invoke(app, ["portfolio", "verify"])
    assert r.exit_code == 0, r.output
    assert "agree" in r.output
    r = runner.invoke(app, ["portfolio", "rebuild"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["idempotency", "purge"])
    assert r.exit_code == 0
    assert "expired" in r.output


def test_staff_login_and_password_from_standard_input(cli_db: str) -> None:
    r = runner.invoke(app, ["staff", "create", "--name", "王审批", "--role", "approver", "--login", "wang"])
    assert r.exit_code == 0, r.output
    assert "console login wang" in r.output
    assert r.output.strip().splitlines()[-1].startswith("lfs_")
    r = runner.invoke(app, ["staff", "create", "--name", "x", "--role", "analyst", "--login", "wang"])
    assert r.exit_code == 1
    assert "taken" in r.output
    r = runner.invoke(app, ["staff", "password", "--login", "wang"], input="short\n")
    assert r.exit_code == 1
    assert "at least" in r.output
    r = runner.invoke(app, ["staff", "password", "--login", "wang"], input="a long enough passphrase\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["staff", "password", "--login", "nobody"], input="a long enough passphrase\n")
    assert r.exit_code == 1
    r = runner.invoke(app, ["staff", "password", "--login", "wang", "--password", "x"])
    assert r.exit_code != 0  # never an argument
