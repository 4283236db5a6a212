"""The console's risk page over HTTP: the stress test shown as the API answers it, the preset form (one run
per form, refused to the roles the API refuses), and the banks' ratings as stored."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.config import Settings
from loanfund.risk import ratings
from loanfund.risk.models import BankRating, StressTestRun
from loanfund.web.formatting import money, ratio_percent
from tests import factories
from tests.factories import Caller
from tests.web.test_console import csrf_of, sign_in, staff_login

URL = "/api/v1/fund/stress-tests"
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
FIGURE = re.compile(r'data-figure="(\w+)">([^<]*)<')


@pytest.fixture
def signed(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> Iterator[Callable[[str], TestClient]]:
    """`signed("officer")`: a client of its own, signed in to the console as a new staff member, over
    the test's rolled-back transaction (`client` puts it in place)."""
    made: list[TestClient] = []
    count = itertools.count(1)

    def make(role: str) -> TestClient:
        staff = staff_login(session, settings, role, f"risk.{role}.{next(count)}")
        c = TestClient(app)
        made.append(c)
        assert staff.login is not None
        assert sign_in(c, staff.login).status_code == 303
        return c

    yield make
    for c in made:
        c.close()


def _lend(client: TestClient, session: Session, bank: Caller, ref: str, amount: str, start: date) -> None:
    code = factories.make_enterprise(session).credit_code
    loan_id = factories.register_loan(client, bank, code, ref, start, amount)
    event = {"bank_event_ref": f"{ref}-D", "date": start.isoformat(), "amount": amount}
    r = client.post(f"/api/v1/loans/{loan_id}/disbursements", json=event, headers=bank.headers)
    assert r.status_code == 201, r.text


@pytest.fixture
def book(
    client: TestClient, session: Session, fund_10m: None, bank_a: Caller, bank_b: Caller, today: date
) -> None:
    """Bank A: 3 loans of 2,000,000 yuan; bank B: 2 loans of 4,000,000."""
    for i in range(3):
        _lend(client, session, bank_a, f"RA-{i}", "2000000.00", today - timedelta(days=20 * i + 10))
    for i in range(2):
        _lend(client, session, bank_b, f"RB-{i}", "4000000.00", today - timedelta(days=40))


def _runs(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(StressTestRun)) or 0


def _form(c: TestClient) -> tuple[str, str]:
    page = c.get("/console/risk")
    assert page.status_code == 200
    nonce = NONCE.search(page.text)
    assert nonce is not None, "no run form on the page"
    return csrf_of(page.text), nonce.group(1)


@pytest.mark.usefixtures("book")
def test_the_page_shows_the_run_as_the_api_answers_it(
    signed: Callable[[str], TestClient], client: TestClient, analyst: Caller
) -> None:
    viewer = signed("approver")  # any staff member reads; an approver may not run
    empty = viewer.get("/console/risk")
    assert empty.status_code == 200
    assert "data-no-run" in empty.text
    assert 'href="/console/risk"' in empty.text  # in the navigation
    first = client.post(
        URL, json={"preset": "pds_doubled", "scenarios": 2000, "seed": 3}, headers=analyst.headers
    )
    latest = client.post(URL, json={"scenarios": 3000, "seed": 9}, headers=analyst.headers)
    assert (first.status_code, latest.status_code) == (201, 201), latest.text

    for path, run_id in (
        ("/console/risk", latest.json()["id"]),
        (f"/console/risk?run={first.json()['id']}", first.json()["id"]),
        (f"/console/risk/stress-tests/{first.json()['id']}", first.json()["id"]),
    ):
        page = viewer.get(path)
        assert page.status_code == 200, path
        api = client.get(f"{URL}/{run_id}", headers=analyst.headers).json()
        out = api["outputs"]
        shown = dict(FIGURE.findall(page.text))
        assert shown == {
            "p_exhaustion": ratio_percent(out["p_exhaustion"]),
            "p_programme_breaker": ratio_percent(out["p_programme_breaker"]),
            **{
                k: money(out[k])
                for k in (
                    "expected_loss",
                    "var_95",
                    "var_99",
                    "expected_shortfall_99",
                    "covered_outstanding",
                    "available_balance",
                )
            },
        }, path
        assert shown["covered_outstanding"] == "14,000,000.00"
        assert f'data-run="{run_id}"' in page.text
        assert api["inputs"]["as_of"] in page.text
        for bank in out["by_bank"]:
            row = re.search(rf'<tr data-bank="{bank["bank_code"]}">(.*?)</tr>', page.text, re.S)
            assert row is not None
            assert money(bank["expected_loss"]) in row.group(1)
            assert money(bank["var_99_contribution"]) in row.group(1)
            assert ratio_percent(bank["p_bank_breaker"]) in row.group(1)
        for chart in ("balance_fan", "loss_histogram"):
            assert f'data-chart="{chart}"' in page.text
        fan = re.search(r'data-chart-data="balance_fan">(.*?)</script>', page.text, re.S)
        assert fan is not None
        medians = re.search(r'"p50":\[(.*?)\]', fan.group(1))
        assert medians is not None
        wan = [str((Decimal(m["p50"]) / 10000).quantize(Decimal("0.01"))) for m in out["balance_fan"]]
        assert medians.group(1) == ",".join(f'"{w}"' for w in wan)
        # the earlier runs, linked
        assert f'href="/console/risk?run={first.json()["id"]}"' in page.text
        assert 'name="nonce"' not in page.text  # an approver sees no form
    assert viewer.get("/console/risk?run=999999").status_code == 404


@pytest.mark.usefixtures("book")
def test_the_preset_form_runs_once_however_often_it_is_sent(
    signed: Callable[[str], TestClient], session: Session, today: date
) -> None:
    officer = signed("officer")
    token, nonce = _form(officer)
    assert _runs(session) == 0
    form = {"csrf_token": token, "nonce": nonce, "preset": "correlation_030", "as_of": ""}
    r = officer.post("/console/risk/stress-tests", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    run = session.scalars(select(StressTestRun)).one()
    assert r.headers["location"] == f"/console/risk?run={run.id}&done=stress_run"
    assert (run.preset, run.inputs["correlation"]) == ("correlation_030", "0.3000")
    # the same form again (a double click, a reload of the post): the first run, not a second
    again = officer.post("/console/risk/stress-tests", data=form, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == r.headers["location"]
    assert _runs(session) == 1
    audits = session.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "stress_test.run")
    )
    assert audits == 1
    shown = officer.get(r.headers["location"])
    assert "压力测试已完成" in shown.text
    assert f'data-run="{run.id}"' in shown.text
    # a new form is a new run; an error is shown beside its field and runs nothing
    token, fresh = _form(officer)
    assert fresh != nonce
    future = (today + timedelta(days=400)).isoformat()
    bad = officer.post(
        "/console/risk/stress-tests",
        data={"csrf_token": token, "nonce": fresh, "preset": "baseline", "as_of": future},
    )
    assert bad.status_code == 422
    assert re.search(r'data-error-for="as_of">[^<]+<', bad.text)
    assert _runs(session) == 1
    token, fresh = _form(officer)
    ok = officer.post(
        "/console/risk/stress-tests",
        data={"csrf_token": token, "nonce": fresh, "preset": "largest_bank_defaults"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert _runs(session) == 2


@pytest.mark.usefixtures("book")
def test_roles_the_api_refuses_see_no_form_and_are_refused(
    signed: Callable[[str], TestClient], session: Session
) -> None:
    analyst = signed("analyst")
    token, nonce = _form(analyst)  # the API lets an analyst run one: so does the console
    for who in ("approver", "admin"):
        c = signed(who)
        page = c.get("/console/risk")
        assert page.status_code == 200
        assert 'action="/console/risk/stress-tests"' not in page.text
        mine = csrf_of(page.text)
        r = c.post(
            "/console/risk/stress-tests",
            data={"csrf_token": mine, "nonce": nonce, "preset": "baseline"},
            follow_redirects=False,
        )
        assert r.status_code == 403, who
    no_token = analyst.post("/console/risk/stress-tests", data={"nonce": nonce, "preset": "baseline"})
    assert no_token.status_code == 403
    assert _runs(session) == 0
    r = analyst.post(
        "/console/risk/stress-tests",
        data={"csrf_token": token, "nonce": nonce, "preset": "baseline"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert _runs(session) == 1


def _rating(bank_id: int, month: date, rating: int, driver: str, settings: Settings) -> BankRating:
    measures = [
        {
            "key": key,
            "label_zh": zh,
            "label_en": en,
            "value": "0.0600" if key == driver else "0.0100",
            "numerator": None,
            "denominator": None,
            "percentile": "1.0000" if key == driver else "0.0000",
            "peer_score": "5.00",
            "threshold_score": 3 if key == driver else 1,
            "score": "4.00",
            "weight": "0.2000",
            "loan_count": 0,
            "loans": [],
            "months": [],
        }
        for key, (zh, en) in ratings.LABELS.items()
    ]
    return BankRating(
        bank_id=bank_id,
        month=month,
        rating=rating,
        score=Decimal(rating),
        driver=driver,
        peers=2,
        measures=measures,
        parameters=ratings.parameters(settings),
        computed_by="test",
    )


def test_the_ratings_table_shows_the_stored_ratings(
    signed: Callable[[str], TestClient], session: Session, settings: Settings, bank_a: Caller, bank_b: Caller
) -> None:
    c = signed("analyst")
    assert "尚无月份完成评级" in c.get("/console/risk").text
    history: dict[int, list[int]] = {bank_a.id: [1, 2, 3], bank_b.id: [4, 5, 2]}
    for bank_id, ladder in history.items():
        for k, value in enumerate(ladder):
            driver = "npl_ratio" if bank_id == bank_a.id else "early_default_rate"
            session.add(_rating(bank_id, date(2021, 10 + k, 1), value, driver, settings))
    session.flush()

    def row(text: str, code: str) -> str:
        found = re.search(rf'<tr data-bank="{code}">(.*?)</tr>', text, re.S)
        assert found is not None, code
        return found.group(1)

    latest = c.get("/console/risk")  # the latest month rated: 2021-12
    assert latest.status_code == 200
    assert 'option value="2021-12" selected' in latest.text
    a, b = row(latest.text, "BANK_A"), row(latest.text, "BANK_B")
    assert 'data-rating="3"' in a
    assert 'data-rating="2"' in b
    assert f'href="/console/banks/{bank_a.id}"' in a
    assert "不良率 0.0600" in a  # the measure that drove it, in Chinese
    assert "早期违约率 0.0600" in b
    trend = re.search(r"data-trend>(.*?)</td>", a, re.S)
    assert trend is not None
    assert re.findall(r">(\d)</span>", trend.group(1)) == ["1", "2", "3"]
    assert 'data-chart="rating_trend"' in latest.text
    chart = re.search(r'data-chart-data="rating_trend">(.*?)</script>', latest.text, re.S)
    assert chart is not None
    assert '"BANK_B":[null,null,null,null,null,null,null,null,null,4,5,2]' in chart.group(1)

    november = c.get("/console/risk?month=2021-11")
    assert 'data-rating="2"' in row(november.text, "BANK_A")
    assert 'data-rating="5"' in row(november.text, "BANK_B")
    english = c.get("/console/risk?month=2021-11&lang=en")
    assert "Early default rate 0.0600" in row(english.text, "BANK_B")
    missing = c.get("/console/risk?month=2020-01")
    assert missing.status_code == 404
    assert "2020-01" in missing.text
    assert c.get("/console/risk?month=2021-13").status_code == 422
