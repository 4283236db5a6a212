from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.audit.models import AuditRecord
from tests.factories import Caller, credit_code, enterprise_payload

URL = "/api/v1/enterprises"
BAD_CHECKSUM = "91350100M000100Y44"


def test_create_and_read(client: TestClient, officer: Caller, analyst: Caller) -> None:
    payload = enterprise_payload(high_tech_cert_no="GR202150000001", high_tech_cert_expiry="2024-11-30")
    r = client.post(URL, json=payload, headers=officer.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["region_code"] == "500114"
    assert body["registered_tech"] is True
    r = client.get(f"{URL}/{payload['credit_code']}", headers=analyst.headers)
    assert r.status_code == 200
    assert r.json()["high_tech_cert_no"] == "GR202150000001"


def test_malformed_code_is_422_naming_the_field(client: TestClient, officer: Caller) -> None:
    for bad in ["9135010OM000100Y43", "123", "91350100M000100Y43X"]:
        r = client.post(URL, json=enterprise_payload(credit_code=bad), headers=officer.headers)
        assert r.status_code == 422, bad
        assert r.json()["error"]["details"][0]["field"] == "credit_code"
        assert r.json()["error"]["code"] == "credit_code_malformed"


def test_checksum_failure_needs_an_explicit_audited_override(
    client: TestClient, officer: Caller, session: Session
) -> None:
    r = client.post(URL, json=enterprise_payload(credit_code=BAD_CHECKSUM), headers=officer.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "credit_code_checksum_failed"
    assert r.json()["error"]["details"][0]["field"] == "credit_code"
    reason = "early code issued before GB 32100, verified against the business licence"
    r = client.post(
        URL,
        json=enterprise_payload(credit_code=BAD_CHECKSUM, checksum_override_reason=reason),
        headers=officer.headers,
    )
    assert r.status_code == 201
    assert r.json()["checksum_override"] is True
    rec = session.scalar(select(AuditRecord).where(AuditRecord.action == "enterprise.checksum_override"))
    assert rec is not None
    assert rec.reason == reason
    assert rec.actor_id == officer.id


def test_duplicate_is_409(client: TestClient, officer: Caller) -> None:
    payload = enterprise_payload()
    assert client.post(URL, json=payload, headers=officer.headers).status_code == 201
    r = client.post(URL, json=payload, headers=officer.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "enterprise_exists"


def test_roles(client: TestClient, analyst: Caller, bank_a: Caller) -> None:
    assert client.post(URL, json=enterprise_payload(), headers=analyst.headers).status_code == 403
    assert client.get(URL, headers=bank_a.headers).status_code == 403
    assert client.get(URL).status_code == 401


def test_filters_and_pagination(client: TestClient, officer: Caller) -> None:
    for i in range(3):
        client.post(
            URL, json=enterprise_payload(industry="I", name=f"重庆软件{i}有限公司"), headers=officer.headers
        )
    client.post(
        URL,
        json=enterprise_payload(industry="C", tech_reg_no=None, tech_reg_date=None),
        headers=officer.headers,
    )
    page = client.get(URL, params={"industry": "I", "limit": 2}, headers=officer.headers).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = client.get(
        URL, params={"industry": "I", "cursor": page["next_cursor"]}, headers=officer.headers
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    unregistered = client.get(URL, params={"registered": "false"}, headers=officer.headers).json()["items"]
    assert [e["registered_tech"] for e in unregistered] == [False]
    named = client.get(URL, params={"q": "软件1"}, headers=officer.headers).json()["items"]
    assert [e["name"] for e in named] == ["重庆软件1有限公司"]
    assert client.get(URL, params={"q": "%"}, headers=officer.headers).json()["items"] == []


def test_update(client: TestClient, officer: Caller) -> None:
    payload = enterprise_payload()
    client.post(URL, json=payload, headers=officer.headers)
    code = payload["credit_code"]
    r = client.patch(f"{URL}/{code}", json={"headcount": 77}, headers=officer.headers)
    assert r.status_code == 200
    assert r.json()["headcount"] == 77
    r = client.patch(f"{URL}/{code}", json={"high_tech_cert_no": "GR1"}, headers=officer.headers)
    assert r.status_code == 422
    assert (
        client.patch(f"{URL}/{credit_code()}", json={"headcount": 1}, headers=officer.headers).status_code
        == 404
    )


def _csv(rows: list[str]) -> bytes:
    return (
        "\ufeffcredit_code,name,industry,tech_reg_no,tech_reg_date,headcount\n" + "\n".join(rows) + "\n"
    ).encode()


def test_csv_import_all_or_nothing_with_line_numbers(
    client: TestClient, officer: Caller, analyst: Caller
) -> None:
    good1, good2 = credit_code(), credit_code()
    rows = [
        f"{good1},甲公司,C,2021001,2021-01-05,10",
        f"{BAD_CHECKSUM},乙公司,C,,,",
        f"{good2},丙公司,Z,,,",
        f"{good1},丁公司,C,,,",
        f"{credit_code()},戊公司,C,,2021-13-01,",
    ]
    headers = {**officer.headers, "content-type": "text/csv"}
    r = client.post(f"{URL}/import", content=_csv(rows), headers=headers)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "csv_rows_invalid"
    lines = {(d["line"], d["field"]) for d in err["details"]}
    assert lines == {(3, "credit_code"), (4, "industry"), (5, "credit_code"), (6, "tech_reg_date")}
    assert client.get(f"{URL}/{good1}", headers=analyst.headers).status_code == 404

    r = client.post(f"{URL}/import", content=_csv([*rows[:1], f"{good2},丙公司,I,,,"]), headers=headers)
    assert r.status_code == 200
    assert r.json() == {"imported": 2}
    assert client.get(f"{URL}/{good2}", headers=analyst.headers).json()["industry"] == "I"
    # the same file again: every row already exists
    r = client.post(f"{URL}/import", content=_csv(rows[:1]), headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["message"] == "already registered"


def test_csv_bad_header_and_encoding(client: TestClient, officer: Caller) -> None:
    headers = {**officer.headers, "content-type": "text/csv"}
    r = client.post(f"{URL}/import", content=b"code,name\nx,y\n", headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "csv_header_invalid"
    r = client.post(
        f"{URL}/import",
        content="credit_code,name,industry\n".encode("gbk") + "重庆".encode("gbk"),
        headers=headers,
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "csv_encoding"
