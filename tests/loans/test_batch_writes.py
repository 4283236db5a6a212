"""What a batch writes in bulk is what item-by-item posting writes: loan rows equal to a replay of their
events, one audit record per item, aggregates equal to a rebuild — also with events on loans stored
by an earlier batch, backdated events, tranches across years and borrowers first seen in an earlier year."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from loanfund.core.config import Settings
from loanfund.loans import writes
from loanfund.loans.models import Loan, LoanEvent
from tests.factories import (
    Caller,
    assert_loans_replay_and_aggregates_rebuild,
    contract_payload,
    make_enterprise,
)

pytestmark = pytest.mark.usefixtures("funded")
URL = "/api/v1/loans/batch"


def _event(kind: str, ref: str, n: int, day: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "bank_loan_ref": ref, "bank_event_ref": f"{ref}-{n}", "date": day, **fields}


@pytest.fixture(params=[250, 2], ids=["one-part", "parts-of-2"])
def part(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Items per part handed to the writer: the whole batch at once, or two at a time (so that an event
    meets its loan written by an earlier part, and a backdated event's replay meets events of this
    batch already written)."""
    monkeypatch.setattr(writes, "_PART", request.param)
    return int(request.param)


def test_batches_keep_rows_audit_and_aggregates(
    client: TestClient, bank_a: Caller, session: Session, settings: Settings, part: int
) -> None:
    ents = [make_enterprise(session, industry=ind).credit_code for ind in ("C", "I", "M")]
    first: list[dict[str, Any]] = []
    for i in range(6):
        ref = f"W-{i}"
        first.append(
            {
                "type": "contract",
                **contract_payload(
                    ents[i % 3], ref, amount="200000", start_date="2021-11-01", maturity_date="2022-10-31"
                ),
            }
        )
        first.append(_event("disbursement", ref, 1, "2022-01-10", amount="100000"))
    first.append(_event("disbursement", "W-0", 2, "2021-12-20", amount="50000"))  # backdated, year before
    first.append(_event("repayment", "W-1", 3, "2022-03-01", principal="20000", interest="300"))
    r = client.post(URL, json={"items": first}, headers=bank_a.headers)
    assert r.status_code == 200, r.text
    assert_loans_replay_and_aggregates_rebuild(session, settings)

    second = [
        _event("delinquency", "W-2", 4, "2022-05-01", days_past_due=30),
        _event("delinquency", "W-2", 5, "2022-07-01", days_past_due=95),
        _event("repayment", "W-3", 6, "2022-02-01", principal="100000", interest="10"),  # settles it
        _event("disbursement", "W-4", 7, "2021-11-15", amount="100000"),  # backdated past a stored event
        _event("repayment", "W-4", 8, "2022-04-01", principal="150000", interest="0"),
        {"type": "contract", **contract_payload(ents[0], "W-9", amount="100000")},
        _event("disbursement", "W-9", 9, "2021-04-01", amount="100000"),  # enterprise first seen in 2021
    ]
    r = client.post(URL, json={"items": second}, headers={**bank_a.headers, "Idempotency-Key": "w-2"})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == 6
    assert_loans_replay_and_aggregates_rebuild(session, settings)
    states = {
        loan.bank_loan_ref: loan.state.value
        for loan in session.scalars(select(Loan).where(Loan.bank_id == bank_a.id))
    }
    assert states["W-2"] == "non_performing"
    assert states["W-3"] == "settled"
    loan_ids = [i for i in r.json()["loan_ids"]]
    audited = session.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.entity_type == "loan")
    )
    events = session.scalar(select(func.count()).select_from(LoanEvent).where(LoanEvent.bank_id == bank_a.id))
    assert audited == len(first) + len(second)
    assert events == len(first) + len(second) - 7  # less the contracts
    assert len(loan_ids) == len(second)


def test_duplicates_within_a_batch_name_the_first_item(
    client: TestClient, bank_a: Caller, session: Session
) -> None:
    code = make_enterprise(session).credit_code
    items = [
        {"type": "contract", **contract_payload(code, "D-1", amount="100000")},
        _event("disbursement", "D-1", 1, "2021-03-02", amount="50000"),
        _event("disbursement", "D-1", 1, "2021-03-03", amount="50000"),
        {"type": "contract", **contract_payload(code, "D-1", amount="100000")},
    ]
    r = client.post(URL, json={"items": items}, headers=bank_a.headers)
    assert r.status_code == 422
    details = {d["index"]: d for d in r.json()["error"]["details"]}
    assert details[2]["code"] == "bank_event_ref_taken"
    assert details[2]["details"] == {"index": 1}
    assert details[3]["code"] == "bank_loan_ref_taken"
    assert details[3]["details"] == {"index": 0}


def test_an_invalid_item_after_written_parts_leaves_nothing(
    client: TestClient, bank_a: Caller, session: Session, settings: Settings, part: int
) -> None:
    code = make_enterprise(session).credit_code
    items: list[dict[str, Any]] = []
    for i in range(4):
        ref = f"P-{i}"
        items.append({"type": "contract", **contract_payload(code, ref, amount="100000")})
        items.append(_event("disbursement", ref, 1, "2021-03-02", amount="50000"))
    items.append(_event("repayment", "P-0", 2, "2021-04-01", principal="90000", interest="0"))  # > owed
    items.append(_event("disbursement", "P-9", 3, "2021-04-01", amount="1000"))  # no such loan

    def counts() -> tuple[int | None, ...]:
        tables = (Loan, LoanEvent, AuditRecord)
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in tables)

    before = counts()
    r = client.post(URL, json={"items": items}, headers=bank_a.headers)
    assert r.status_code == 422
    assert [d["index"] for d in r.json()["error"]["details"]] == [8, 9]
    assert counts() == before
    assert_loans_replay_and_aggregates_rebuild(session, settings)
    r = client.post(URL, json={"items": items[:8]}, headers={**bank_a.headers, "Idempotency-Key": "p-2"})
    assert r.status_code == 200, r.text
    assert counts() == (before[0] + 4, before[1] + 4, before[2] + 8)  # type: ignore[operator]
    assert_loans_replay_and_aggregates_rebuild(session, settings)
