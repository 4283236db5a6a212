"""What the schema fuzzer found, one regression test each (the fix is named in each docstring)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient

from loanfund.core.errors import install_error_handlers
from loanfund.core.params import MAX_ID, single_valued_query
from tests.factories import credit_code
from tests.security.conftest import AFTER_REPORT, World


def test_a_body_that_is_not_utf8_is_a_malformed_body(client: TestClient, world: World) -> None:
    """Was an undeclared 400 "There was an error parsing the body" (before even checking the key).
    Fix: core/errors.py renders the framework's 400 as the 422 every other malformed body gets."""
    for headers in (world.headers("officer"), {}):
        r = client.post(
            "/api/v1/banks",
            content=b'{"code": "\xff\xfe"}',
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/loans/{MAX_ID + 1}",
        "/api/v1/loans/984138836178799161597933784137728",
        f"/api/v1/banks/{2**64}",
        "/api/v1/status-reports/0",
        f"/api/v1/loans?bank_id={MAX_ID + 1}",
        f"/api/v1/audit?actor_id={10**30}",
    ],
)
def test_ids_out_of_range_are_refused_by_name(client: TestClient, world: World, url: str) -> None:
    """Was a 500: an id beyond 64 bits reached the driver (SQLite OverflowError, PostgreSQL bigint out
    of range). Fix: core/params.py `IdPath` / `id_query()` declare 1..2^63-1 on every id."""
    r = client.get(url, headers=world.headers("admin"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


def test_ids_in_range_still_work(client: TestClient, world: World) -> None:
    assert client.get(f"/api/v1/loans/{MAX_ID}", headers=world.headers("admin")).status_code == 404
    assert client.get(f"/api/v1/loans/{world.loan_id}", headers=world.headers("admin")).status_code == 200


def test_a_bank_reference_longer_than_any_reference_is_422(client: TestClient, world: World) -> None:
    """Was accepted with anything (an unconstrained path string). Fix: the path uses the Ref pattern."""
    r = client.get("/api/v1/loans/by-ref/" + "R" * 65, headers=world.headers("bank_own"))
    assert r.status_code == 422
    ok = client.get(f"/api/v1/loans/by-ref/{world.loan_ref}", headers=world.headers("bank_own"))
    assert ok.status_code == 200


def test_a_csv_the_csv_module_cannot_read_is_422(client: TestClient, world: World) -> None:
    """Was a 500 (csv.Error escaped). Fix: enterprises/service.py turns csv.Error into 422 csv_malformed,
    and reads the text with newline="" as the csv module wants (so CR-only line ends work)."""
    officer = {**world.headers("officer"), "Content-Type": "text/csv"}
    huge = "credit_code,name,industry\n" + "x" * 200_000 + ",n,C\n"
    r = client.post("/api/v1/enterprises/import", content=huge.encode(), headers=officer)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "csv_malformed"
    old_mac = f"credit_code,name,industry\r{credit_code()},重庆回车科技有限公司,C\r"
    r = client.post("/api/v1/enterprises/import", content=old_mac.encode(), headers=officer)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 1}


@pytest.mark.parametrize("value", [0, 1_626_307_200, "1626307200", "2021-07-15T00:00:00", "2021-7-15", None])
def test_dates_are_iso_text_only(client: TestClient, world: World, value: Any) -> None:
    """Was accepted: `?applied_from=0.0` read as a Unix time (1970-01-01), and so was a number in a body.
    Fix: core/dates.py `IsoDate` / `IsoDateTime` on every date a client sends."""
    bank = world.headers("bank_own")
    body = {"bank_event_ref": "DATE-1", "date": value, "days_past_due": 3}
    r = client.post(f"/api/v1/loans/{world.loan_id}/delinquency", json=body, headers=bank)
    assert r.status_code == 422
    if value is not None:
        r = client.get(
            "/api/v1/applications", params={"applied_from": value}, headers=world.headers("analyst")
        )
        assert r.status_code == 422
        r = client.get("/api/v1/audit", params={"since": value}, headers=world.headers("analyst"))
        assert r.status_code == 422


def test_iso_dates_and_timestamps_still_work(client: TestClient, world: World) -> None:
    body = {"bank_event_ref": "DATE-2", "date": AFTER_REPORT.isoformat(), "days_past_due": 3}
    r = client.post(
        f"/api/v1/loans/{world.loan_id}/delinquency", json=body, headers=world.headers("bank_own")
    )
    assert r.status_code == 201, r.text
    analyst = world.headers("analyst")
    assert client.get(
        "/api/v1/applications", params={"applied_from": "2021-07-15"}, headers=analyst
    ).is_success
    for since in ("2021-07-15T08:00:00Z", "2021-07-15T08:00:00.123+08:00"):
        assert client.get("/api/v1/audit", params={"since": since}, headers=analyst).is_success


def test_a_nul_character_is_never_a_500(client: TestClient, world: World, backend: str) -> None:
    """Was a 500 on PostgreSQL, which stores no NUL in text. Fix: core/errors.py answers the database's
    DataError (a value it cannot store or compare) with 422 invalid_value."""
    officer = world.headers("officer")
    suspend = client.post(
        f"/api/v1/banks/{world.bank_a.id}/suspend", json={"reason": "bad\u0000reason"}, headers=officer
    )
    search = client.get("/api/v1/audit", params={"entity_type": "a\u0000b"}, headers=officer)
    if backend == "postgres":
        assert (suspend.status_code, search.status_code) == (422, 422)
        assert suspend.json()["error"]["code"] == "invalid_value"
    else:  # SQLite stores and compares NUL like any character
        assert (suspend.status_code, search.status_code) == (200, 200)


def test_timestamps_and_dates_outside_the_calendar_of_the_programme_are_422(
    client: TestClient, world: World
) -> None:
    """Was a 500: `since=0001-01-01T00:03:01+02:00` is before year 1 in UTC (OverflowError binding it);
    a start date in 9999 overflowed the term arithmetic. Fix: core/dates.py bounds every date a client
    sends to 1900–2199."""
    r = client.get(
        "/api/v1/audit", params={"since": "0001-01-01T00:03:01.0+02:00"}, headers=world.headers("analyst")
    )
    assert r.status_code == 422
    contract = {
        "bank_loan_ref": "FAR-FUTURE",
        "credit_code": world.credit_code,
        "amount": "1000.00",
        "annual_rate_pct": "4.35",
        "start_date": "9999-12-01",
        "maturity_date": "9999-12-31",
    }
    r = client.post("/api/v1/loans", json=contract, headers=world.headers("bank_own"))
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "start_date"
    event = {"bank_event_ref": "FAR-PAST", "date": "0001-01-05", "days_past_due": 36_500}
    r = client.post(
        f"/api/v1/loans/{world.loan_id}/delinquency", json=event, headers=world.headers("bank_own")
    )
    assert r.status_code == 422


def test_a_query_parameter_given_twice_is_422(client: TestClient, world: World) -> None:
    """Was accepted: `?limit=<junk>&limit=8` was answered as `limit=8` (FastAPI reads the last value).
    Fix: core/params.py `single_valued_query`, installed for the whole app."""
    admin = world.headers("admin")
    r = client.get("/api/v1/banks?limit=%F1%90%A1%B0&limit=&limit=%098", headers=admin)
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["error"]["details"]] == ["limit"]
    r = client.get("/api/v1/banks?status=active&status=suspended&cursor=1&cursor=2", headers=admin)
    assert [d["field"] for d in r.json()["error"]["details"]] == ["cursor", "status"]
    assert client.get("/api/v1/banks?limit=2&status=active", headers=admin).status_code == 200
    assert client.get("/healthz?x=1&x=2").status_code == 200  # undeclared parameters stay ignored


def test_list_parameters_may_still_repeat() -> None:
    app = FastAPI(dependencies=[Depends(single_valued_query)])
    install_error_handlers(app)

    @app.get("/x")
    def x(tag: Annotated[list[str] | None, Query()] = None, one: int | None = None) -> dict[str, Any]:
        return {"tag": tag, "one": one}

    c = TestClient(app)
    assert c.get("/x?tag=a&tag=b&one=1").json() == {"tag": ["a", "b"], "one": 1}
    assert c.get("/x?tag=a&one=1&one=2").status_code == 422
