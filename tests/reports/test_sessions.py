"""Reports against a real SQLite file, one connection per session (the shared test connection would hide
this): a report authenticates in its own request-scoped session, so it never waits for a second
session's write lock (SQLite begins every transaction IMMEDIATE)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event

from loanfund.app import create_app
from loanfund.core.config import Settings
from loanfund.core.db import make_engine, make_sessionmaker
from loanfund.core.migrations import upgrade
from tests import factories
from tests.conftest import TEST_SECRET


def test_reports_on_a_real_sqlite_file(backend: str, tmp_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's single writer is the point")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{tmp_path / 'reports.db'}",
        secret_key=SecretStr(TEST_SECRET),
        key_touch_interval_s=0,
    )
    upgrade(settings.database_url)
    engine = make_engine(settings)

    @event.listens_for(engine, "connect")
    def _fail_fast(dbapi_connection: object, _record: object) -> None:
        cur = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cur.execute("PRAGMA busy_timeout=1000")  # a lock wait shows up as a 503 within a second
        cur.close()

    with make_sessionmaker(engine)() as session:
        analyst = factories.staff_caller(session, settings, "analyst")
    try:
        with TestClient(create_app(settings, engine)) as client:
            # the first pass also pays for what a fresh process does once (about a second on a busy
            # machine); a lock wait would be a 503 there too. The second pass is timed.
            for timed in (False, True):
                for path in ("summary?year=2021", "aging?detail=true", "claims", "status-discrepancies"):
                    for fmt in ("json", "csv", "xlsx"):
                        sep = "&" if "?" in path else "?"
                        started = time.monotonic()
                        r = client.get(f"/api/v1/reports/{path}{sep}format={fmt}", headers=analyst.headers)
                        assert r.status_code == 200, (path, fmt, r.text)
                        assert not timed or time.monotonic() - started < 1, (path, fmt)
    finally:
        engine.dispose()
