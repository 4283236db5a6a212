"""Test harness: the schema comes from `alembic upgrade head`; each test runs in a transaction that is
rolled back (requests commit to a SAVEPOINT); the same suite runs on SQLite and on PostgreSQL.

Choose the backend with `--db sqlite|postgres` (or LOANFUND_TEST_DB). PostgreSQL is reached through
LOANFUND_TEST_POSTGRES_URL, a maintenance database on which the suite creates and drops its own database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from loanfund.app import create_app
from loanfund.applications.router import today as today_dependency
from loanfund.core.clock import business_today
from loanfund.core.config import Settings
from loanfund.core.db import make_engine
from loanfund.core.migrations import upgrade
from tests import databases, factories

pytest_plugins = ["tests.live"]

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TEST_SECRET = "test-secret-" + "x" * 40


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgres"],
        default=os.environ.get("LOANFUND_TEST_DB", "sqlite"),
        help="database backend for the suite",
    )


def _pg_maintenance_url() -> str:
    return os.environ.get("LOANFUND_TEST_POSTGRES_URL", DEFAULT_PG)


def pg_reachable(url: str) -> str | None:
    """None if reachable, else the reason."""
    try:
        eng = create_engine(url, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # any failure to connect means unreachable
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--db") == "postgres":
        reason = pg_reachable(_pg_maintenance_url())
        if reason is not None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.exit(f"PostgreSQL unreachable under CI=true ({reason})", returncode=3)
            pytest.exit(f"PostgreSQL unreachable, postgres backend NOT run ({reason})", returncode=0)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database backend: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the shared rate limits are tested on (LOANFUND_TEST_REDIS_URL; each test uses a key
    prefix of its own). Unreachable → the test fails: the shared limits are tested on every run."""
    import redis

    url = os.environ.get("LOANFUND_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis unreachable at {url} ({exc}); start it (see .ci/run) or set LOANFUND_TEST_REDIS_URL"
        )
    return url


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--db"))


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with databases.fresh_database(
        backend, _pg_maintenance_url(), tmp_path_factory.mktemp("db"), "loanfund_test"
    ) as url:
        yield url


@pytest.fixture
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the suite's backend, for tests that need committed data or no schema."""
    with databases.fresh_database(backend, _pg_maintenance_url(), tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET),
        log_json=True,
        key_touch_interval_s=0,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    upgrade(settings.database_url)
    eng = make_engine(settings)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def session_maker(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_maker: sessionmaker[Session]) -> Iterator[Session]:
    s = session_maker()
    yield s
    s.close()


@pytest.fixture(scope="session")
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
def client(app: FastAPI, session_maker: sessionmaker[Session]) -> Iterator[TestClient]:
    original = app.state.sessionmaker
    app.state.sessionmaker = session_maker
    app.state.rate_limiter.reset()  # all test requests come from one address
    try:
        with TestClient(app) as c:
            yield c
    finally:
        app.state.sessionmaker = original


@pytest.fixture
def on_day(app: FastAPI) -> Iterator[Callable[[date], None]]:
    """Set the business date the application endpoints see (application and decision dates)."""

    def set_day(day: date) -> None:
        app.dependency_overrides[today_dependency] = lambda: day

    yield set_day
    app.dependency_overrides.pop(today_dependency, None)


@pytest.fixture
def funded(session: Session) -> None:
    """A fund of 100,000,000 yuan, so that the 10× leverage cap admits up to 1,000,000,000 of lending."""
    factories.contribute(session, 100_000_000)


# --- loans and the fund, relative to today ---

NplLoan = Callable[..., dict[str, Any]]


@pytest.fixture
def today(settings: Settings) -> date:
    return business_today(settings)


@pytest.fixture
def fund_10m(session: Session) -> None:
    """The DOMAIN scenario's fund: city 4,000,000 + district 6,000,000."""
    factories.contribute(session, 4_000_000, source="city", day="2020-01-01")
    factories.contribute(session, 6_000_000, source="district", day="2020-01-01")


@pytest.fixture
def npl_loan(client: TestClient, session: Session, today: date) -> NplLoan:
    """A loan of `amount` yuan, fully disbursed 200 days ago and now 95 days past due."""
    counter = iter(range(1, 10_000))

    def make(caller: factories.Caller, amount: str = "3000000", *, dpd: int = 95) -> dict[str, Any]:
        n = next(counter)
        code = factories.make_enterprise(session).credit_code
        start = today - timedelta(days=200)
        body = {
            "bank_loan_ref": f"NPL-{caller.name}-{n}",
            "credit_code": code,
            "amount": amount,
            "annual_rate_pct": "4.00",
            "start_date": start.isoformat(),
            "maturity_date": (start + timedelta(days=360)).isoformat(),
        }
        r = client.post("/api/v1/loans", json=body, headers=caller.headers)
        assert r.status_code == 201, r.text
        lid = r.json()["id"]
        r = client.post(
            f"/api/v1/loans/{lid}/disbursements",
            json={
                "bank_event_ref": f"{body['bank_loan_ref']}-d",
                "date": start.isoformat(),
                "amount": amount,
            },
            headers=caller.headers,
        )
        assert r.status_code == 201, r.text
        r = client.post(
            f"/api/v1/loans/{lid}/delinquency",
            json={
                "bank_event_ref": f"{body['bank_loan_ref']}-q",
                "date": today.isoformat(),
                "days_past_due": dpd,
            },
            headers=caller.headers,
        )
        assert r.status_code == 201, r.text
        loan: dict[str, Any] = r.json()["loan"]
        return loan

    return make


@pytest.fixture
def lenient_breakers(settings: Settings) -> Iterator[None]:
    """Bank breakers that never trip, for tests about something else."""
    saved = settings.breaker_warning_ratio, settings.breaker_suspend_ratio
    settings.breaker_warning_ratio = settings.breaker_suspend_ratio = Decimal("1.5")
    yield
    settings.breaker_warning_ratio, settings.breaker_suspend_ratio = saved


# --- callers -------------------------------------------------------------------------------------


@pytest.fixture
def officer(session: Session, settings: Settings) -> factories.Caller:
    return factories.staff_caller(session, settings, "officer")


@pytest.fixture
def analyst(session: Session, settings: Settings) -> factories.Caller:
    return factories.staff_caller(session, settings, "analyst")


@pytest.fixture
def approver(session: Session, settings: Settings) -> factories.Caller:
    return factories.staff_caller(session, settings, "approver")


@pytest.fixture
def admin(session: Session, settings: Settings) -> factories.Caller:
    return factories.staff_caller(session, settings, "admin")


@pytest.fixture
def bank_a(session: Session, settings: Settings) -> factories.Caller:
    return factories.bank_caller(session, settings, "BANK_A")


@pytest.fixture
def bank_b(session: Session, settings: Settings) -> factories.Caller:
    return factories.bank_caller(session, settings, "BANK_B")
