"""The fund's HTTP API: contributions, position, accounts, transactions, reversal, reconciliation."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loanfund.fund import service
from tests.factories import TEST_ACTOR, Caller

URL = "/api/v1/fund"


def contribution(source: str, amount: str, day: str, doc: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "amount": amount, "value_date": day, "budget_doc_no": doc, **extra}


def test_contributions_and_position(client: TestClient, officer: Caller, analyst: Caller) -> None:
    r = client.post(
        f"{URL}/contributions",
        json=contribution("city", "4000000", "2021-03-01", "渝财预〔2021〕12号", memo="first tranche"),
        headers=officer.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["amount"] == "4000000.00"
    assert body["reversed"] is False
    assert body["transaction_id"] > 0
    r = client.post(
        f"{URL}/contributions",
        json=contribution("district", "6000000.00", "2021-07-01", "黔财预〔2021〕45号"),
        headers=officer.headers,
    )
    assert r.status_code == 201

    now = client.get(f"{URL}/position", headers=analyst.headers).json()
    assert now == {
        "as_of": None,
        "fund_size": "10000000.00",
        "balance": "10000000.00",
        "reserved": "0.00",
        "available": "10000000.00",
        "contributions": {"city": "4000000.00", "district": "6000000.00"},
        "compensation_paid": "0.00",
        "recoveries_recognised": "0.00",
        "recoveries_receivable": "0.00",
        "recoveries_received": "0.00",
        "interest_income": "0.00",
    }
    mid = client.get(f"{URL}/position", params={"as_of": "2021-06-30"}, headers=analyst.headers).json()
    assert (mid["as_of"], mid["fund_size"], mid["balance"]) == ("2021-06-30", "4000000.00", "4000000.00")
    assert mid["contributions"] == {"city": "4000000.00", "district": "0.00"}

    listed = client.get(f"{URL}/contributions", params={"source": "district"}, headers=analyst.headers)
    assert [c["budget_doc_no"] for c in listed.json()["items"]] == ["黔财预〔2021〕45号"]
    assert client.get(f"{URL}/contributions", params={"year": 2020}, headers=analyst.headers).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert (
        len(
            client.get(f"{URL}/contributions", params={"year": 2021}, headers=analyst.headers).json()["items"]
        )
        == 2
    )


def test_contribution_refusals(client: TestClient, officer: Caller, analyst: Caller, bank_a: Caller) -> None:
    body = contribution("city", "100", "2021-03-01", "DOC-1")
    assert client.post(f"{URL}/contributions", json=body, headers=officer.headers).status_code == 201
    dup = client.post(f"{URL}/contributions", json=body, headers=officer.headers)
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "budget_doc_duplicate"
    for bad in (
        {**body, "budget_doc_no": "DOC-2", "amount": "0"},
        {**body, "budget_doc_no": "DOC-2", "amount": "-5"},
        {**body, "budget_doc_no": "DOC-2", "amount": "1.001"},
        {**body, "budget_doc_no": "DOC-2", "source": "province"},
        {**body, "budget_doc_no": ""},
    ):
        r = client.post(f"{URL}/contributions", json=bad, headers=officer.headers)
        assert r.status_code == 422, bad
    future = client.post(
        f"{URL}/contributions",
        json={**body, "budget_doc_no": "DOC-3", "value_date": "2199-01-01"},
        headers=officer.headers,
    )
    assert future.status_code == 422
    assert future.json()["error"]["code"] == "value_date_in_future"
    assert client.post(f"{URL}/contributions", json=body, headers=analyst.headers).status_code == 403
    assert client.post(f"{URL}/contributions", json=body, headers=bank_a.headers).status_code == 403
    assert client.get(f"{URL}/position", headers=bank_a.headers).status_code == 403
    assert client.get(f"{URL}/position").status_code == 401


def test_transactions_reverse_and_reconcile(
    client: TestClient, officer: Caller, analyst: Caller, session: Session
) -> None:
    created = client.post(
        f"{URL}/contributions",
        json=contribution("city", "250.50", "2021-03-01", "DOC-9"),
        headers=officer.headers,
    ).json()
    tid = created["transaction_id"]
    txn = client.get(f"{URL}/transactions/{tid}", headers=analyst.headers).json()
    assert txn["kind"] == "contribution"
    assert (txn["reference_type"], txn["reference_id"]) == ("contribution", "DOC-9")
    assert {(e["account"], e["side"], e["amount"]) for e in txn["entries"]} == {
        ("fund_cash:available", "debit", "250.50"),
        ("contrib:city", "credit", "250.50"),
    }
    assert txn["reversed_by_id"] is None

    assert (
        client.post(
            f"{URL}/transactions/{tid}/reverse", json={"reason": "wrong amount"}, headers=analyst.headers
        ).status_code
        == 403
    )
    r = client.post(
        f"{URL}/transactions/{tid}/reverse", json={"reason": "wrong amount"}, headers=officer.headers
    )
    assert r.status_code == 201, r.text
    reversal = r.json()
    assert (reversal["kind"], reversal["reverses_id"], reversal["value_date"]) == (
        "reversal",
        tid,
        "2021-03-01",
    )
    assert {(e["account"], e["side"]) for e in reversal["entries"]} == {
        ("fund_cash:available", "credit"),
        ("contrib:city", "debit"),
    }
    again = client.post(
        f"{URL}/transactions/{tid}/reverse", json={"reason": "wrong amount"}, headers=officer.headers
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_reversed"
    undo = client.post(
        f"{URL}/transactions/{reversal['id']}/reverse", json={"reason": "undo it"}, headers=officer.headers
    )
    assert undo.json()["error"]["code"] == "cannot_reverse_reversal"
    missing = client.post(
        f"{URL}/transactions/999999/reverse", json={"reason": "nope"}, headers=officer.headers
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "transaction_not_found"
    assert client.get(f"{URL}/transactions/999999", headers=analyst.headers).status_code == 404

    listed = client.get(f"{URL}/contributions", headers=analyst.headers).json()["items"]
    assert listed[0]["reversed"] is True
    assert listed[0]["reversal_transaction_id"] == reversal["id"]
    assert (
        client.get(f"{URL}/transactions/{tid}", headers=analyst.headers).json()["reversed_by_id"]
        == reversal["id"]
    )

    # claim transactions are reversed through their claim
    assert (
        client.post(
            f"{URL}/contributions",
            json=contribution("city", "5", "2021-03-01", "DOC-10"),
            headers=officer.headers,
        ).status_code
        == 201
    )
    claim_txn = service.reserve(session, TEST_ACTOR, 1, date(2021, 3, 2), "claim", "1")
    session.commit()
    refused = client.post(
        f"{URL}/transactions/{claim_txn.id}/reverse", json={"reason": "no!"}, headers=officer.headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "reversal_not_allowed"

    page = client.get(f"{URL}/transactions", params={"kind": "reversal"}, headers=analyst.headers).json()
    assert [t["id"] for t in page["items"]] == [reversal["id"]]
    by_ref = client.get(
        f"{URL}/transactions",
        params={"reference_type": "contribution", "reference_id": "DOC-9"},
        headers=analyst.headers,
    ).json()["items"]
    assert [t["id"] for t in by_ref] == [reversal["id"], tid]  # newest first

    rec = client.get(f"{URL}/reconciliation", headers=analyst.headers).json()
    assert rec["ok"] is True
    assert rec["total_debits"] == rec["total_credits"]
    assert (rec["differences"], rec["unbalanced_transactions"], rec["negative_accounts"]) == ([], [], [])


def test_accounts_and_pagination(
    client: TestClient, officer: Caller, analyst: Caller, bank_a: Caller, session: Session
) -> None:
    client.post(
        f"{URL}/contributions", json=contribution("city", "1000", "2021-03-01", "D1"), headers=officer.headers
    )
    service.reserve(session, TEST_ACTOR, 40_000, date(2021, 3, 2), "claim", "1")
    service.pay_reserved(session, TEST_ACTOR, 40_000, bank_a.id, date(2021, 3, 3), "claim", "1")
    session.commit()
    accounts = client.get(f"{URL}/accounts", headers=analyst.headers).json()["items"]
    by_code = {a["code"]: a for a in accounts}
    assert by_code["fund_cash:available"]["balance"] == "600.00"
    assert by_code["fund_cash:available"]["normal_side"] == "debit"
    assert by_code["contrib:city"]["balance"] == "1000.00"
    assert by_code["contrib:city"]["normal_side"] == "credit"
    paid = by_code[f"comp_paid:bank:{bank_a.id}"]
    assert (paid["balance"], paid["bank_id"], paid["type"]) == ("400.00", bank_a.id, "expense")
    assert by_code["fund_cash:reserved"]["debits"] == by_code["fund_cash:reserved"]["credits"] == "400.00"
    only_bank = client.get(f"{URL}/accounts", params={"bank_id": bank_a.id}, headers=analyst.headers).json()
    assert [a["code"] for a in only_bank["items"]] == [f"comp_paid:bank:{bank_a.id}"]

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"{URL}/transactions", params=params, headers=analyst.headers).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3
    assert seen == sorted(seen, reverse=True)
    assert [
        t["kind"] for t in client.get(f"{URL}/transactions", headers=analyst.headers).json()["items"]
    ] == [
        "compensation_payment",
        "reserve",
        "contribution",
    ]


def test_openapi_declares_errors(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path, method in [
        ("/api/v1/fund/contributions", "post"),
        ("/api/v1/fund/contributions", "get"),
        ("/api/v1/fund/position", "get"),
        ("/api/v1/fund/accounts", "get"),
        ("/api/v1/fund/transactions", "get"),
        ("/api/v1/fund/transactions/{transaction_id}/reverse", "post"),
        ("/api/v1/fund/reconciliation", "get"),
    ]:
        responses = doc["paths"][path][method]["responses"]
        assert {"401", "403"} <= set(responses), path
    assert "409" in doc["paths"]["/api/v1/fund/transactions/{transaction_id}/reverse"]["post"]["responses"]
