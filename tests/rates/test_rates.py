from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.errors import InvalidInput
from loanfund.rates import service
from tests.factories import Caller


@pytest.mark.parametrize(
    ("day", "rate"),
    [
        (date(2019, 8, 19), "4.35"),  # benchmark before the LPR
        (date(2019, 8, 20), "4.25"),
        (date(2021, 6, 30), "3.85"),
        (date(2021, 12, 20), "3.80"),
        (date(2026, 1, 1), "3.00"),
    ],
)
def test_lpr_in_force(session: Session, day: date, rate: str) -> None:
    assert service.lpr_on(session, day).rate_pct == Decimal(rate)


def test_no_rate_before_the_table(session: Session) -> None:
    with pytest.raises(InvalidInput):
        service.lpr_on(session, date(2000, 1, 1))


def test_max_rate_is_lpr_plus_cap(session: Session, settings: Settings) -> None:
    assert service.max_rate_on(session, settings, date(2021, 6, 1)) == Decimal("5.35")


def test_credit_line_tables_are_versioned(session: Session) -> None:
    assert service.credit_line_for(session, "A", date(2021, 6, 1)) == 300_000_000
    assert service.credit_line_for(session, "A", date(2023, 6, 1)) == 500_000_000
    assert service.credit_line_for(session, "E", date(2023, 6, 1)) == 80_000_000


def test_officer_adds_rates(client: TestClient, officer: Caller, analyst: Caller, bank_a: Caller) -> None:
    r = client.post(
        "/api/v1/rates/lpr",
        json={"effective_date": "2026-06-22", "rate_pct": "2.95"},
        headers=officer.headers,
    )
    assert r.status_code == 201
    assert r.json()["rate_pct"] == "2.9500"
    dup = client.post(
        "/api/v1/rates/lpr", json={"effective_date": "2026-06-22", "rate_pct": "2.9"}, headers=officer.headers
    )
    assert dup.status_code == 409
    assert (
        client.post(
            "/api/v1/rates/lpr",
            json={"effective_date": "2026-07-20", "rate_pct": "2.9"},
            headers=analyst.headers,
        ).status_code
        == 403
    )
    listed = client.get("/api/v1/rates/lpr", headers=bank_a.headers).json()
    assert listed[-1]["effective_date"] == "2026-06-22"

    table = {"A": "6000000", "B": "4500000", "C": "3000000", "D": "1600000", "E": "800000"}
    r = client.post(
        "/api/v1/rates/credit-lines",
        json={"effective_date": "2026-01-01", "lines": table},
        headers=officer.headers,
    )
    assert r.status_code == 201
    assert r.json()["lines"]["A"] == "6000000.00"
    partial = {"effective_date": "2027-01-01", "lines": {"A": "1"}}
    assert client.post("/api/v1/rates/credit-lines", json=partial, headers=officer.headers).status_code == 422
    versions = client.get("/api/v1/rates/credit-lines", headers=analyst.headers).json()
    assert [v["effective_date"] for v in versions] == ["2017-01-01", "2023-01-01", "2026-01-01"]
