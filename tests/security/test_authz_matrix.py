"""The authorization matrix: every route × every kind of caller → the exact status it gets.

One row per route, `(METHOD, path template)` exactly as FastAPI lists it. The expectation string holds one
status per column, in the order of KINDS:

    anon  no Authorization header
    own   bank A, which owns every record the path names (its loan, its report, itself...)
    oth   bank B, which owns none of them
    ana / off / apr / adm   bureau staff: analyst, officer, approver, admin
    tok   the status token of bank A's application, presented as a bearer key

Path parameters are filled from the world (`World.path_params`, overridable per row) and each write row
builds a valid body from the world, so a 2xx means the caller got past authentication, the role check
and the object lookup and the request was carried out. Every cell runs in its own SAVEPOINT, rolled back
afterwards, so cells never see each other's writes.

A route the app serves without a row here fails `test_every_route_has_a_row`, naming the row to add.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from loanfund.core.ratelimit import RateLimiter
from tests.factories import STRONG_INDICATORS, credit_code, enterprise_payload
from tests.security.conftest import AFTER_REPORT, World, api_routes

KINDS = ("anonymous", "bank_own", "bank_other", "analyst", "officer", "approver", "admin", "enterprise")

Body = Callable[[World], Any]


@dataclass(frozen=True)
class Row:
    expect: str  # one status per column of KINDS
    body: Body | None = None  # JSON body (or text for a non-JSON media type)
    path: Callable[[World], dict[str, Any]] | None = None  # path parameters overriding World.path_params
    media_type: str = "application/json"
    query: dict[str, Any] | None = None

    def statuses(self) -> dict[str, int]:
        codes = self.expect.split()
        assert len(codes) == len(KINDS), f"{self.expect!r}: one status per column {KINDS}"
        return dict(zip(KINDS, map(int, codes), strict=True))


# --- sample bodies ---------------------------------------------------------------------------------


def _contract(w: World) -> dict[str, Any]:
    return {
        "bank_loan_ref": "MATRIX-LOAN",
        "credit_code": w.credit_code,
        "amount": "500000.00",
        "annual_rate_pct": "4.35",
        "start_date": "2021-04-01",
        "maturity_date": "2022-03-31",
    }


def _event(w: World, **fields: Any) -> dict[str, Any]:
    return {"bank_event_ref": "MATRIX-EV", "date": AFTER_REPORT.isoformat(), **fields}


def _application(w: World) -> dict[str, Any]:
    return {
        "credit_code": w.credit_code,
        "contact": {"name": "张经理", "phone": "13800138000"},
        "requested_amount": "800000.00",
        "term_months": 12,
        "bank_code": w.bank_a.name,
        "indicators": STRONG_INDICATORS,
    }


def _csv(w: World) -> str:
    return f"credit_code,name,industry\n{credit_code()},重庆矩阵科技有限公司,C\n"


def _report(w: World) -> dict[str, Any]:
    line = {"bank_loan_ref": w.loan_ref, "outstanding_principal": "1000000.00", "days_past_due": 0}
    return {"month_end": "2021-07-31", "loans": [line]}


REASON = {"reason": "checked by the authorization matrix"}
YEAR = {"year": 2021}
LINES = {g: f"{v}000000.00" for g, v in zip("ABCDE", (5, 4, 3, 2, 1), strict=True)}

# --- the matrix ------------------------------------------------------------------------------------
# fmt: off
MATRIX: dict[tuple[str, str], Row] = {
    #                                                    anon own oth ana off apr adm tok
    ("GET", "/healthz"):                             Row("200 200 200 200 200 200 200 200"),
    ("GET", "/readyz"):                              Row("200 200 200 200 200 200 200 200"),
    # partner banks
    ("POST", "/api/v1/banks"):                       Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: {"code": "MATRIX", "name": "M"}),
    ("GET", "/api/v1/banks"):                        Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/partner-banks"):                Row("200 200 200 200 200 200 200 200"),
    ("GET", "/api/v1/banks/me"):                     Row("401 200 200 403 403 403 403 401"),
    ("GET", "/api/v1/banks/{bank_id}"):              Row("401 200 404 200 200 200 200 401"),
    ("PATCH", "/api/v1/banks/{bank_id}"):            Row("401 403 403 403 200 403 403 401",
                                                         body=lambda w: {"name": "Renamed"}),
    ("POST", "/api/v1/banks/{bank_id}/suspend"):     Row("401 403 403 403 200 403 403 401",
                                                         body=lambda w: REASON),
    ("POST", "/api/v1/banks/{bank_id}/reinstate"):   Row("401 403 403 403 200 403 403 401",
                                                         body=lambda w: REASON,
                                                         path=lambda w: {"bank_id": w.suspended_bank_id}),
    # enterprise registry
    ("POST", "/api/v1/enterprises"):                 Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: enterprise_payload()),
    ("GET", "/api/v1/enterprises"):                  Row("401 403 403 200 200 200 200 401"),
    ("POST", "/api/v1/enterprises/import"):          Row("401 403 403 403 200 403 403 401",
                                                         body=_csv, media_type="text/csv"),
    ("GET", "/api/v1/enterprises/{credit_code}"):    Row("401 403 403 200 200 200 200 401"),
    ("PATCH", "/api/v1/enterprises/{credit_code}"):  Row("401 403 403 403 200 403 403 401",
                                                         body=lambda w: {"headcount": 60}),
    # rates
    ("GET", "/api/v1/rates/lpr"):                    Row("401 200 200 200 200 200 200 401"),
    ("POST", "/api/v1/rates/lpr"):                   Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: {"effective_date": "2030-01-20",
                                                                         "rate_pct": "3.10"}),
    ("GET", "/api/v1/rates/credit-lines"):           Row("401 200 200 200 200 200 200 401"),
    ("POST", "/api/v1/rates/credit-lines"):          Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: {"effective_date": "2030-01-01",
                                                                         "lines": LINES}),
    # applications: the public side (a key is not a status token: 404, like a wrong token)
    ("POST", "/api/v1/applications"):                Row("201 201 201 201 201 201 201 201",
                                                         body=_application),
    ("GET", "/api/v1/applications/{application_no}"): Row("401 404 404 404 404 404 404 200"),
    # applications: bureau and banks
    ("GET", "/api/v1/applications"):                 Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/applications/{application_no}/detail"):
                                                     Row("401 403 403 200 200 200 200 401"),
    ("POST", "/api/v1/applications/{application_no}/override"):
                                                     Row("401 403 403 403 200 403 403 401",
                                                         body=lambda w: {"grade": "B", **REASON}),
    ("POST", "/api/v1/applications/{application_no}/status-token"):
                                                     Row("401 403 403 403 200 403 403 401",
                                                         body=lambda w: REASON),
    ("GET", "/api/v1/bank/applications"):            Row("401 200 200 403 403 403 403 401"),
    ("GET", "/api/v1/bank/applications/{application_no}"):
                                                     Row("401 200 404 403 403 403 403 401"),
    ("POST", "/api/v1/bank/applications/{application_no}/approve"):
                                                     Row("401 200 404 403 403 403 403 401",
                                                         body=lambda w: {"amount": "500000.00",
                                                                         "term_months": 12,
                                                                         "annual_rate_pct": "3.00"}),
    ("POST", "/api/v1/bank/applications/{application_no}/reject"):
                                                     Row("401 200 404 403 403 403 403 401",
                                                         body=lambda w: REASON),
    # loans
    ("POST", "/api/v1/loans"):                       Row("401 201 201 403 403 403 403 401",
                                                         body=_contract),
    ("GET", "/api/v1/loans"):                        Row("401 200 200 200 200 200 200 401"),
    ("POST", "/api/v1/loans/batch"):                 Row("401 200 200 403 403 403 403 401",
                                                         body=lambda w: {"items": [{"type": "contract",
                                                                                    **_contract(w)}]}),
    ("POST", "/api/v1/loans/{loan_id}/disbursements"): Row("401 201 404 403 403 403 403 401",
                                                         body=lambda w: _event(w, amount="10000.00")),
    ("POST", "/api/v1/loans/{loan_id}/repayments"):  Row("401 201 404 403 403 403 403 401",
                                                         body=lambda w: _event(w, principal="1000.00")),
    ("POST", "/api/v1/loans/{loan_id}/delinquency"): Row("401 201 404 403 403 403 403 401",
                                                         body=lambda w: _event(w, days_past_due=10)),
    ("GET", "/api/v1/loans/by-ref/{bank_loan_ref}"): Row("401 200 404 403 403 403 403 401"),
    ("GET", "/api/v1/loans/{loan_id}"):              Row("401 200 404 200 200 200 200 401"),
    # monthly status reports
    ("POST", "/api/v1/status-reports"):              Row("401 201 201 403 403 403 403 401", body=_report),
    ("GET", "/api/v1/status-reports"):               Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/status-reports/discrepancies"): Row("401 403 403 200 200 200 200 401"),
    # corrections: bank B has closed no month (nothing to amend); reopening is the officer's
    ("POST", "/api/v1/status-reports/amendments"):   Row("401 201 409 403 403 403 403 401",
                                                         body=lambda w: {**_report(w), "month_end": "2021-06-30",
                                                                         **REASON}),
    ("POST", "/api/v1/status-reports/reopenings"):   Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: {"bank_id": w.bank_a.id,
                                                                         "month_end": "2021-06-30", **REASON}),
    ("GET", "/api/v1/status-reports/reopenings"):    Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/status-reports/{report_id}"):   Row("401 200 404 200 200 200 200 401"),
    # staff and keys (admin)
    ("POST", "/api/v1/staff"):                       Row("401 403 403 403 403 403 201 401",
                                                         body=lambda w: {"name": "New", "role": "analyst"}),
    ("GET", "/api/v1/staff"):                        Row("401 403 403 403 403 403 200 401"),
    ("POST", "/api/v1/staff/{staff_id}/deactivate"): Row("401 403 403 403 403 403 200 401"),
    ("POST", "/api/v1/staff/{staff_id}/activate"):   Row("401 403 403 403 403 403 200 401",
                                                         path=lambda w: {"staff_id": w.inactive_staff_id}),
    ("POST", "/api/v1/staff/{staff_id}/keys"):       Row("401 403 403 403 403 403 201 401",
                                                         body=lambda w: {"label": "matrix"}),
    ("POST", "/api/v1/banks/{bank_id}/keys"):        Row("401 403 403 403 403 403 201 401",
                                                         body=lambda w: {"label": "matrix"}),
    ("GET", "/api/v1/keys"):                         Row("401 403 403 403 403 403 200 401"),
    ("POST", "/api/v1/keys/{key_id}/revoke"):        Row("401 403 403 403 403 403 200 401"),
    # the fund
    ("POST", "/api/v1/fund/contributions"):          Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: {"source": "city", "amount": "1000.00",
                                                                         "value_date": "2021-01-04",
                                                                         "budget_doc_no": "MATRIX-1"}),
    ("GET", "/api/v1/fund/contributions"):           Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/fund/position"):                Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/fund/accounts"):                Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/fund/transactions"):            Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/fund/transactions/{transaction_id}"):
                                                     Row("401 403 403 200 200 200 200 401"),
    ("POST", "/api/v1/fund/transactions/{transaction_id}/reverse"):
                                                     Row("401 403 403 403 201 403 403 401",
                                                         body=lambda w: REASON,
                                                         path=lambda w: {"transaction_id": w.reversible_transaction_id}),
    ("GET", "/api/v1/fund/reconciliation"):          Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/fund/exposure"):                Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/fund/breakers"):                Row("401 200 200 200 200 200 200 401"),
    ("POST", "/api/v1/fund/breakers/{bank_id}/lift"): Row("401 403 403 403 409 403 403 401",
                                                         body=lambda w: REASON),
    ("POST", "/api/v1/fund/breakers/programme/lift"): Row("401 403 403 403 409 403 403 401",
                                                         body=lambda w: REASON),
    # risk analytics: the stress test (officers and analysts run it) and the banks' ratings
    ("POST", "/api/v1/fund/stress-tests"):           Row("401 403 403 201 201 403 403 401",
                                                         body=lambda w: {"scenarios": 200, "seed": 3}),
    ("GET", "/api/v1/fund/stress-tests"):            Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/fund/stress-tests/{run_id}"):   Row("401 403 403 200 200 200 200 401"),
    ("GET", "/api/v1/banks/ratings"):                Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/banks/{bank_id}/ratings"):      Row("401 200 404 200 200 200 200 401"),
    # compensation claims
    ("POST", "/api/v1/claims"):                      Row("401 201 404 403 403 403 403 401",
                                                         body=lambda w: {"loan_id": w.npl_loan_id,
                                                                         "principal_at_default": "1000.00"}),
    ("GET", "/api/v1/claims"):                       Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/claims/{claim_id}"):            Row("401 200 404 200 200 200 200 401"),
    ("POST", "/api/v1/claims/{claim_id}/approve"):   Row("401 403 403 403 200 200 403 401", body=lambda w: {}),
    ("POST", "/api/v1/claims/{claim_id}/reject"):    Row("401 403 403 403 200 200 403 401", body=lambda w: REASON),
    ("POST", "/api/v1/claims/{claim_id}/pay"):       Row("401 403 403 403 403 200 403 401",
                                                         path=lambda w: {"claim_id": w.approved_claim_id}),
    ("POST", "/api/v1/claims/{claim_id}/recoveries"): Row("401 201 404 403 403 403 403 401",
                                                         body=lambda w: {"bank_ref": "MATRIX-REC",
                                                                         "date": str(w.today), "gross": "100.00"},
                                                         path=lambda w: {"claim_id": w.paid_claim_id}),
    ("POST", "/api/v1/claims/{claim_id}/remittances"): Row("401 201 404 403 403 403 403 401",
                                                         body=lambda w: {"bank_ref": "MATRIX-REM",
                                                                         "date": str(w.today), "amount": "10.00"},
                                                         path=lambda w: {"claim_id": w.paid_claim_id}),
    ("POST", "/api/v1/claims/{claim_id}/close-collection"):
                                                     Row("401 200 404 403 403 403 403 401",
                                                         body=lambda w: {"date": str(w.today)},
                                                         path=lambda w: {"claim_id": w.closable_claim_id}),
    # oversight reports (a bank sees its own slice)
    ("GET", "/api/v1/reports/summary"):              Row("401 200 200 200 200 200 200 401", query=YEAR),
    ("GET", "/api/v1/reports/by-bank"):              Row("401 200 200 200 200 200 200 401", query=YEAR),
    ("GET", "/api/v1/reports/by-industry"):          Row("401 200 200 200 200 200 200 401", query=YEAR),
    ("GET", "/api/v1/reports/by-grade"):             Row("401 200 200 200 200 200 200 401", query=YEAR),
    ("GET", "/api/v1/reports/by-month"):             Row("401 200 200 200 200 200 200 401", query=YEAR),
    ("GET", "/api/v1/reports/fund-flows"):           Row("401 403 403 200 200 200 200 401", query=YEAR),
    ("GET", "/api/v1/reports/aging"):                Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/reports/claims"):               Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/reports/status-discrepancies"): Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/reports/enterprises/{credit_code}/history"):
                                                     Row("401 200 404 200 200 200 200 401"),
    # oversight
    ("GET", "/api/v1/audit"):                        Row("401 403 403 200 200 200 200 401"),
    # webhooks (a bank's own endpoints; bureau staff read them all)
    ("POST", "/api/v1/webhooks/endpoints"):          Row("401 201 201 403 403 403 403 401",
                                                         body=lambda w: {"url": "https://hooks.matrix.example.cn/in"}),
    ("GET", "/api/v1/webhooks/endpoints"):           Row("401 200 200 200 200 200 200 401"),
    ("GET", "/api/v1/webhooks/endpoints/{endpoint_id}"):
                                                     Row("401 200 404 200 200 200 200 401"),
    ("PATCH", "/api/v1/webhooks/endpoints/{endpoint_id}"):
                                                     Row("401 200 404 403 403 403 403 401",
                                                         body=lambda w: {"description": "matrix"}),
    ("DELETE", "/api/v1/webhooks/endpoints/{endpoint_id}"):
                                                     Row("401 204 404 403 403 403 403 401"),
    ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"):
                                                     Row("401 200 404 403 403 403 403 401"),
    ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/test"):
                                                     Row("401 202 404 403 403 403 403 401"),
    ("GET", "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries"):
                                                     Row("401 200 404 200 200 200 200 401"),
    ("POST", "/api/v1/webhooks/endpoints/deliveries/{delivery_id}/retry"):
                                                     Row("401 202 404 403 403 403 403 401"),
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/retry"):
                                                     Row("401 202 404 403 403 403 403 401"),
    ("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/retry"):
                                                     Row("401 202 404 403 403 403 403 401"),
}
# fmt: on


def test_every_route_has_a_row(app: FastAPI) -> None:
    routes = api_routes(app)
    missing = sorted(set(routes) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(routes))
    blank = " ".join(["???"] * len(KINDS))
    message = [
        f"Route {m} {p} has no row in MATRIX (tests/security/test_authz_matrix.py). Add\n"
        f'    ("{m}", "{p}"): Row("{blank}"{", body=..." if m != "GET" else ""}),\n'
        f"  with the status each of {', '.join(KINDS)} must get"
        for m, p in missing
    ] + [f"MATRIX has a row for {m} {p}, which the app no longer serves: remove it" for m, p in stale]
    assert not message, "\n".join(message)


def _ids(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


@pytest.mark.parametrize("route", list(MATRIX), ids=_ids)
def test_matrix(
    route: tuple[str, str],
    client: TestClient,
    world: World,
    connection: Connection,
    fresh_limits: RateLimiter,
) -> None:
    method, template = route
    row = MATRIX[route]
    params = {**world.path_params(), **(row.path(world) if row.path else {})}
    names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
    unknown = [n for n in names if n not in params]
    assert not unknown, (
        f"{method} {template}: no record for path parameter(s) {unknown}; add one to the world "
        "(tests/security/conftest.py, World.path_params) or give the row path=lambda w: {...}"
    )
    url = template.format_map(params)
    wrong = []
    for kind, expected in row.statuses().items():
        fresh_limits.reset()
        kwargs: dict[str, Any] = {"headers": world.headers(kind), "params": row.query}
        if row.body is not None:
            body = row.body(world)
            if row.media_type == "application/json":
                kwargs["json"] = body
            else:
                kwargs["content"] = body.encode()
                kwargs["headers"]["Content-Type"] = row.media_type
        savepoint = connection.begin_nested()
        try:
            r = client.request(method, url, **kwargs)
        finally:
            savepoint.rollback()
        if r.status_code != expected:
            wrong.append(f"  {kind:<11} expected {expected}, got {r.status_code}: {r.text[:300]}")
    assert not wrong, f"{method} {url}\n" + "\n".join(wrong)


# --- the rules the table must follow (checked on the table; test_matrix checks the app against it) ----


def _column(kind: str) -> dict[tuple[str, str], int]:
    return {route: row.statuses()[kind] for route, row in MATRIX.items()}


def _ok(status: int) -> bool:
    return 200 <= status < 300


def test_banks_are_refused_every_bureau_route(app: FastAPI) -> None:
    bureau = [k for k, r in api_routes(app).items() if r.tags == ["bureau"]]
    assert bureau
    for kind in ("bank_own", "bank_other"):
        col = _column(kind)
        assert {k: col[k] for k in bureau if k in col and col[k] != 403} == {}


# POSTs that change no record of the programme: an application is anyone's; a stress test is a stored
# computation that analysts run as well as officers
NOT_WRITES = {("POST", "/api/v1/applications"), ("POST", "/api/v1/fund/stress-tests")}


def test_analysts_write_nothing() -> None:
    ana = _column("analyst")
    writes = {k: v for k, v in ana.items() if k[0] != "GET" and k not in NOT_WRITES}
    assert writes
    assert {k: v for k, v in writes.items() if v != 403} == {}


def test_admin_is_not_an_officer_nor_an_officer_an_admin() -> None:
    off, adm, ana = _column("officer"), _column("admin"), _column("analyst")
    staff_only = [k for k in MATRIX if ana[k] == 403 and _column("bank_own")[k] == 403]
    assert {k for k in staff_only if _ok(off[k]) and adm[k] != 403} == set()
    assert {k for k in staff_only if _ok(adm[k]) and off[k] != 403} == set()


def test_another_banks_records_are_not_found() -> None:
    own, oth = _column("bank_own"), _column("bank_other")
    object_routes = [k for k in MATRIX if "{" in k[1] and _ok(own[k])]
    assert object_routes
    assert {k: oth[k] for k in object_routes if oth[k] != 404} == {}


def test_a_status_token_is_not_a_key() -> None:
    tok = _column("enterprise")
    public = {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/api/v1/applications"),
        ("GET", "/api/v1/partner-banks"),
    }
    status_route = ("GET", "/api/v1/applications/{application_no}")
    assert tok[status_route] == 200
    assert {k: v for k, v in tok.items() if k not in public | {status_route} and v != 401} == {}


# --- idempotency keys are scoped to the bank --------------------------------------------------------


def test_another_banks_idempotency_key_runs_afresh(client: TestClient, world: World) -> None:
    """Bank B sending the Idempotency-Key bank A used gets its own execution, never A's stored answer."""
    key = {"Idempotency-Key": "shared-key-1"}
    a, b = world.headers("bank_own"), world.headers("bank_other")
    body = _contract(world)
    first_a = client.post("/api/v1/loans", json=body, headers={**a, **key})
    assert first_a.status_code == 201
    first_b = client.post("/api/v1/loans", json=body, headers={**b, **key})
    assert first_b.status_code == 201
    assert "idempotent-replayed" not in first_b.headers
    assert first_b.json()["bank_id"] == world.bank_b.id
    assert first_b.json()["id"] != first_a.json()["id"]
    # each bank's retry replays its own first answer
    for headers, first in ((a, first_a), (b, first_b)):
        again = client.post("/api/v1/loans", json=body, headers={**headers, **key})
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/loans/{loan_id}/disbursements", lambda w: _event(w, amount="10000.00")),
        (
            "/api/v1/bank/applications/{application_no}/approve",
            lambda w: {"amount": "500000.00", "term_months": 12, "annual_rate_pct": "3.00"},
        ),
        ("/api/v1/bank/applications/{application_no}/reject", lambda w: REASON),
    ],
)
def test_replaying_another_banks_key_on_its_record_is_not_found(
    client: TestClient, world: World, path: str, body: Body
) -> None:
    key = {"Idempotency-Key": "shared-key-2"}
    url = path.format_map(world.path_params())
    first = client.post(url, json=body(world), headers={**world.headers("bank_own"), **key})
    assert first.status_code in (200, 201)
    other = client.post(url, json=body(world), headers={**world.headers("bank_other"), **key})
    assert other.status_code == 404
    assert "idempotent-replayed" not in other.headers
    assert other.content != first.content
