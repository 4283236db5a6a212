"""Bank ratings on constructed banks whose order is known: rated when the month's last status report
closes it, stored so that later events do not change them, recomputed only on purpose, scoped to the
caller, exported."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.audit.service import Actor
from loanfund.banks import service as bank_service
from loanfund.banks.models import Bank
from loanfund.core.config import Settings
from loanfund.core.errors import Conflict, InvalidInput
from loanfund.loans import service as loan_service
from loanfund.loans.models import Loan
from loanfund.loans.state import Event, EventKind
from loanfund.risk import ratings
from loanfund.risk.models import BankRating
from loanfund.status_reports import service as report_service
from loanfund.status_reports.models import StatusReport
from loanfund.status_reports.schemas import StatusLine
from tests import factories
from tests.factories import TEST_ACTOR, Caller

JUNE, JULY, AUGUST = date(2021, 6, 1), date(2021, 7, 1), date(2021, 8, 1)
URL = "/api/v1/banks/ratings"


class Banks:
    """GOOD lends across five industries and stays current. MID has one of five loans non-performing
    (eight months after it was lent) and two industries. BAD has two of five loans non-performing within
    five months of lending (early defaults), all in one industry."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session, self.settings = session, settings
        self.callers = {
            code: factories.bank_caller(session, settings, code) for code in ("GOOD", "MID", "BAD")
        }
        self.loans: dict[str, list[Loan]] = {code: [] for code in self.callers}
        for i, industry in enumerate("CIMAE"):
            self.lend("GOOD", f"G-{i}", industry, date(2021, 2, 1))
        for i, industry in enumerate("CCIIM"):
            self.lend("MID", f"M-{i}", industry, date(2020, 10, 5) if i == 0 else date(2021, 2, 1))
        for i in range(5):
            self.lend("BAD", f"B-{i}", "C", date(2021, 2, 1))
        for loan in (self.loans["MID"][0], *self.loans["BAD"][:2]):
            self.event(loan, Event(EventKind.delinquency, date(2021, 6, 25), days_past_due=95), "Q")

    def bank(self, code: str) -> Bank:
        return bank_service.get_bank(self.session, self.callers[code].id)

    def lend(self, code: str, ref: str, industry: str, start: date) -> None:
        ent = factories.make_enterprise(self.session, industry=industry, tech_reg_date="2020-01-01")
        loan = loan_service.register_contract(
            self.session,
            self.settings,
            TEST_ACTOR,
            self.bank(code),
            bank_loan_ref=ref,
            credit_code=ent.credit_code,
            amount=Decimal("1000000.00"),
            annual_rate_pct=Decimal("4.00"),
            start_date=start,
            maturity_date=start + timedelta(days=364),
        )
        self.loans[code].append(loan)
        self.event(loan, Event(EventKind.disbursement, start, principal_fen=100_000_000), "D")

    def event(self, loan: Loan, event: Event, suffix: str) -> None:
        ref = f"{loan.bank_loan_ref}-{suffix}"
        loan_service.post_event(self.session, self.settings, TEST_ACTOR, loan, event, bank_event_ref=ref)

    def report(
        self, code: str, month_end: date, *, mismatch: bool = False, filed: date | None = None
    ) -> StatusReport:
        """The bank's status report for the month, filed (by default) the day after it ends."""
        lines = [
            StatusLine(
                bank_loan_ref=loan.bank_loan_ref,
                outstanding_principal=Decimal("1000000.00") + (Decimal(1) if mismatch and i == 0 else 0),
                days_past_due=loan.days_past_due,
            )
            for i, loan in enumerate(self.loans[code])
        ]
        actor = Actor(kind="bank", id=self.callers[code].id, name=f"bank:{code}")
        report = report_service.submit(self.session, self.settings, actor, self.bank(code), month_end, lines)
        on = filed or month_end + timedelta(days=1)
        report.submitted_at = datetime(on.year, on.month, on.day, 2, tzinfo=UTC)  # 10:00 in Chongqing
        self.session.flush()
        return report

    def ratings(self, month: date) -> dict[str, BankRating]:
        rows = self.session.scalars(select(BankRating).where(BankRating.month == month))
        code = {c.id: name for name, c in self.callers.items()}
        return {code[r.bank_id]: r for r in rows}


@pytest.fixture
def banks(session: Session, settings: Settings, fund_10m: None, lenient_breakers: None) -> Banks:
    return Banks(session, settings)


def _measure(rating: BankRating, key: str) -> dict[str, Any]:
    return next(m for m in rating.measures if m["key"] == key)


def test_the_month_is_rated_when_its_last_report_closes_it(banks: Banks) -> None:
    end = date(2021, 6, 30)
    banks.report("GOOD", end)
    banks.report("MID", end)
    assert banks.ratings(JUNE) == {}  # BAD has not reported: the month is not closed for everyone
    banks.report("BAD", end)
    rated = banks.ratings(JUNE)
    assert set(rated) == {"GOOD", "MID", "BAD"}
    good, mid, bad = rated["GOOD"], rated["MID"], rated["BAD"]
    assert (good.rating, mid.rating, bad.rating) == (1, 2, 4)
    assert good.score < mid.score < bad.score
    assert {r.computed_by for r in rated.values()} == {"bank:BAD"}
    assert {r.peers for r in rated.values()} == {3}
    # the measures, as counted
    assert [_measure(r, "npl_ratio")["value"] for r in (good, mid, bad)] == ["0.0000", "0.2000", "0.4000"]
    assert [_measure(r, "early_default_rate")["value"] for r in (good, mid, bad)] == [
        "0.0000",
        "0.0000",
        "0.4000",
    ]
    assert [_measure(r, "concentration")["value"] for r in (good, mid, bad)] == ["0.2000", "0.3600", "1.0000"]
    npl = _measure(bad, "npl_ratio")
    assert (npl["percentile"], npl["peer_score"], npl["threshold_score"], npl["score"]) == (
        "1.0000",
        "5.00",
        5,
        "5.00",
    )
    assert [loan["bank_loan_ref"] for loan in npl["loans"]] == ["B-0", "B-1"]
    assert npl["loans"][0]["href"] == f"/api/v1/loans/{banks.loans['BAD'][0].id}"
    assert [loan["bank_loan_ref"] for loan in _measure(bad, "early_default_rate")["loans"]] == ["B-0", "B-1"]
    assert _measure(mid, "early_default_rate")["loans"] == []  # its default came eight months in
    assert (bad.driver, mid.driver, good.driver) == ("npl_ratio", "npl_ratio", "concentration")
    # nothing reported before June was due yet; nobody lent a year before
    assert {_measure(r, "report_lateness")["value"] for r in rated.values()} == {None}
    assert {_measure(r, "growth")["value"] for r in rated.values()} == {None}


def test_ratings_stay_as_stored_and_a_recompute_is_explicit_and_audited(
    banks: Banks, session: Session, settings: Settings
) -> None:
    for code in ("GOOD", "MID", "BAD"):
        banks.report(code, date(2021, 6, 30))
    stored = {code: (r.rating, r.score, r.measures) for code, r in banks.ratings(JUNE).items()}
    # BAD's loans are repaid in July: June's ratings do not move
    for i, loan in enumerate(banks.loans["BAD"][2:]):
        banks.event(loan, Event(EventKind.repayment, date(2021, 7, 5), principal_fen=100_000_000), f"R{i}")
    assert {code: (r.rating, r.score, r.measures) for code, r in banks.ratings(JUNE).items()} == stored
    with pytest.raises(Conflict) as refused:
        ratings.compute_month(session, settings, TEST_ACTOR, JUNE)
    assert refused.value.code == "ratings_exist"
    with pytest.raises(InvalidInput):
        ratings.compute_month(session, settings, TEST_ACTOR, JUNE, recompute=True)
    stricter = settings.model_copy(
        update={"rating_bands": [Decimal("1.05"), Decimal("2"), Decimal("3"), Decimal("3.5")]}
    )
    ratings.compute_month(session, stricter, TEST_ACTOR, JUNE, recompute=True, reason_text="bands revised")
    again = banks.ratings(JUNE)
    assert (again["GOOD"].rating, again["BAD"].rating) == (2, 5)
    assert again["GOOD"].parameters["bands"] == ["1.05", "2", "3", "3.5"]
    audit = session.scalar(select(AuditRecord).where(AuditRecord.action == "ratings.recompute"))
    assert audit is not None
    assert (audit.entity_id, audit.reason) == ("2021-06", "bands revised")
    assert audit.before == {"GOOD": 1, "MID": 2, "BAD": 4}
    assert audit.after == {"GOOD": 2, "MID": 3, "BAD": 5}
    computed = session.scalar(select(AuditRecord).where(AuditRecord.action == "ratings.compute"))
    assert computed is not None
    assert computed.after == {"GOOD": 1, "MID": 2, "BAD": 4}


def test_late_missing_and_mismatched_reports_count(
    banks: Banks, session: Session, settings: Settings
) -> None:
    june, july = date(2021, 6, 30), date(2021, 7, 31)
    for code in ("GOOD", "MID", "BAD"):
        banks.report(code, june)
    banks.report("GOOD", july, filed=date(2021, 8, 20))  # past the 15 days allowed
    banks.report("BAD", july, mismatch=True)  # one balance off by a yuan; MID never files July
    ratings.compute_month(session, settings, TEST_ACTOR, AUGUST)  # by hand: August is not closed
    rated = banks.ratings(AUGUST)
    lateness = {code: _measure(r, "report_lateness") for code, r in rated.items()}
    assert {code: m["value"] for code, m in lateness.items()} == {
        "GOOD": "1.0000",
        "MID": "1.0000",
        "BAD": "0.0000",
    }
    assert lateness["GOOD"]["months"] == [
        {"month_end": "2021-07-31", "status": "late", "submitted_on": "2021-08-20"}
    ]
    assert lateness["MID"]["months"] == [
        {"month_end": "2021-07-31", "status": "missing", "submitted_on": None}
    ]
    assert (lateness["BAD"]["numerator"], lateness["BAD"]["denominator"]) == ("0", "2")
    discrepancies = _measure(rated["BAD"], "report_discrepancies")
    assert (discrepancies["value"], discrepancies["numerator"], discrepancies["denominator"]) == (
        "0.1000",
        "1",
        "10",
    )
    assert [loan["bank_loan_ref"] for loan in discrepancies["loans"]] == ["B-0"]


def test_a_month_not_over_is_refused(session: Session, settings: Settings, today: date) -> None:
    with pytest.raises(InvalidInput) as refused:
        ratings.compute_month(session, settings, TEST_ACTOR, today.replace(day=1) + timedelta(days=40))
    assert refused.value.code == "month_not_over"
    assert ratings.compute_month(session, settings, TEST_ACTOR, date(2019, 1, 1)) == []  # no bank had loans


def test_the_api_scopes_by_caller_and_exports(
    banks: Banks, client: TestClient, analyst: Caller, officer: Caller
) -> None:
    for code in ("GOOD", "MID", "BAD"):
        banks.report(code, date(2021, 6, 30))
    good, bad = banks.callers["GOOD"], banks.callers["BAD"]
    table = client.get(URL, params={"month": "2021-06"}, headers=analyst.headers).json()
    assert [(r["bank_code"], r["rating"]) for r in table["ratings"]] == [("GOOD", 1), ("MID", 2), ("BAD", 4)]
    assert table["peers"] == 3
    assert table["parameters"]["bands"] == ["1.75", "2.50", "3.00", "4.00"]
    row = table["ratings"][2]
    assert row["reason"] == "NPL ratio 0.4000: 2 of 2 peers do better; at or above threshold 4 (0.08)"
    assert row["trend"] == [{"month": "2021-06", "rating": 4}]
    assert client.get(URL, headers=officer.headers).json() == table  # the latest month by default
    # a bank sees its own row only, and its own history only
    mine = client.get(URL, params={"month": "2021-06"}, headers=good.headers).json()
    assert [r["bank_code"] for r in mine["ratings"]] == ["GOOD"]
    assert mine["peers"] == 3
    assert client.get(f"/api/v1/banks/{bad.id}/ratings", headers=good.headers).status_code == 404
    history = client.get(f"/api/v1/banks/{good.id}/ratings", headers=good.headers).json()
    assert [(r["month"], r["rating"]) for r in history["items"]] == [("2021-06", 1)]
    assert (
        client.get(f"/api/v1/banks/{bad.id}/ratings", headers=analyst.headers).json()["items"][0]["rating"]
        == 4
    )
    # a month not rated; a malformed month
    r = client.get(URL, params={"month": "2021-05"}, headers=analyst.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "ratings_not_found")
    assert client.get(URL, params={"month": "2021-13"}, headers=analyst.headers).status_code == 422
    # exports
    r = client.get(URL, params={"month": "2021-06", "format": "csv"}, headers=analyst.headers)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["银行风险评级 / Bank risk ratings"]
    assert [row[:4] for row in rows[2:5]] == [
        ["2021-06", "GOOD", "Bank GOOD", "1"],
        ["2021-06", "MID", "Bank MID", "2"],
        ["2021-06", "BAD", "Bank BAD", "4"],
    ]
    r = client.get(f"/api/v1/banks/{bad.id}/ratings", params={"format": "xlsx"}, headers=bad.headers)
    sheet = openpyxl.load_workbook(io.BytesIO(r.content))["评级 Ratings"]
    assert [c for c in next(sheet.iter_rows(min_row=9, values_only=True))][:4] == [
        "2021-06",
        "BAD",
        "Bank BAD",
        4,
    ]


def test_history_pages_newest_first(
    banks: Banks, client: TestClient, session: Session, settings: Settings, analyst: Caller
) -> None:
    for month in (JUNE, JULY, AUGUST):
        ratings.compute_month(session, settings, TEST_ACTOR, month)
    url = f"/api/v1/banks/{banks.callers['BAD'].id}/ratings"
    page = client.get(url, params={"limit": 2}, headers=analyst.headers).json()
    assert [r["month"] for r in page["items"]] == ["2021-08", "2021-07"]
    assert page["next_cursor"] == "202107"
    assert [r["month"] for r in page["items"][0]["trend"]] == ["2021-06", "2021-07", "2021-08"]
    rest = client.get(url, params={"limit": 2, "cursor": page["next_cursor"]}, headers=analyst.headers).json()
    assert ([r["month"] for r in rest["items"]], rest["next_cursor"]) == (["2021-06"], None)
    assert client.get(url, params={"cursor": "202113"}, headers=analyst.headers).status_code == 422
