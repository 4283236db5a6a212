"""The OpenAPI document and the pages that show it.

* `/docs` and `/redoc` work on an offline intranet: their scripts, styles and favicon come from the app,
  and their HTML names no other host.
* Every example in the document validates against the schema it illustrates.
* Every request body has an example, and that example, posted as it stands, is accepted: never a 422
  (nor a 5xx). Each number, boolean and date in it, replaced by a value of another JSON type (`true`
  for a number, `1` for a boolean, a Unix time for a date), is refused with a 422 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from loanfund.banks import service as bank_service
from loanfund.claims import service as claim_service
from loanfund.core.config import Settings
from loanfund.core.ratelimit import RateLimiter
from loanfund.enterprises.schemas import EXAMPLE_CREDIT_CODE
from loanfund.loans import service as loan_service
from loanfund.loans.state import Event, EventKind
from tests import factories
from tests.factories import TEST_ACTOR
from tests.security.conftest import World
from tests.security.test_authz_matrix import KINDS, MATRIX

# --- offline pages ---------------------------------------------------------------------------------

_URL = re.compile(r"""(?:src|href|url)\s*[=:(]\s*["']?([^"'\s>)]+)""", re.I)


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_documentation_pages_need_no_other_host(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "an external host in the page"
    assert "fonts.googleapis" not in html
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "http" not in csp  # no other origin allowed
    for ref in _URL.findall(html):
        if ref.startswith("/docs/assets/"):
            asset = client.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 1000, ref


def test_swagger_ui_and_redoc_load_their_own_assets(client: TestClient) -> None:
    docs, redoc = client.get("/docs").text, client.get("/redoc").text
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in docs
    assert 'href="/docs/assets/swagger-ui.css"' in docs
    assert '"validatorUrl": null' in docs  # no call to the online validator
    assert '<script src="/docs/assets/redoc.standalone.js">' in redoc
    js = client.get("/docs/assets/redoc.standalone.js")
    assert js.headers["content-type"].startswith("text/javascript")


# --- every example validates against its schema ------------------------------------------------------


def _walk_examples(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for each example in the document: a schema's `examples` (a list) and
    a media type's or parameter's `example` (checked against its `schema`)."""
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list):
            schema = {k: v for k, v in node.items() if k != "examples"}
            for i, ex in enumerate(node["examples"]):
                yield f"{where}/examples/{i}", schema, ex
        if "example" in node and isinstance(node.get("schema"), dict):
            yield f"{where}/example", node["schema"], node["example"]
        for key, value in node.items():
            if key not in ("examples", "example"):
                yield from _walk_examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_examples(value, f"{where}/{i}")


def test_every_example_in_the_document_validates_against_its_schema(app: FastAPI) -> None:
    doc = app.openapi()
    found = list(_walk_examples(doc))
    assert len(found) > 60
    wrong = []
    for where, schema, example in found:
        # the schema with the document's components beside it, so that its $refs resolve
        validator = jsonschema_rs.Draft202012Validator(
            {**schema, "components": doc["components"]}, validate_formats=True
        )
        errors = [e.message for e in validator.iter_errors(example)]
        if errors:
            wrong.append(f"{where}: {example!r}: {errors[:2]}")
    assert not wrong, "\n".join(wrong)


# --- every request example is accepted, and strict about JSON types -----------------------------------


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _variants(doc: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(doc, schema)
    parts = schema.get("anyOf") or schema.get("oneOf")
    if parts:
        return [v for p in parts for v in _variants(doc, p)]
    return [schema]


def _leaves(
    doc: dict[str, Any], schema: dict[str, Any], value: Any, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], set[str], set[str]]]:
    """(path, JSON types, formats) of each scalar in `value`, as its schema declares them."""
    variants = _variants(doc, schema)
    if isinstance(value, dict):
        objects = [v for v in variants if "properties" in v]
        # a discriminated union: the variant whose constant fields match the value
        fitting = [
            v
            for v in objects
            if all(value.get(k) == p.get("const", value.get(k)) for k, p in v["properties"].items())
        ]
        for key, item in value.items():
            subs = [v["properties"][key] for v in fitting or objects if key in v["properties"]]
            for sub in subs[:1]:
                yield from _leaves(doc, sub, item, (*path, key))
    elif isinstance(value, list):
        items = [v["items"] for v in variants if "items" in v]
        for i, item in enumerate(value):
            yield from _leaves(doc, items[0], item, (*path, i))
    else:
        types = {v["type"] for v in variants if isinstance(v.get("type"), str)}
        formats = {v["format"] for v in variants if "format" in v}
        yield path, types, formats


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: _replaced(body[head], rest, new)}
    return [_replaced(item, rest, new) if i == head else item for i, item in enumerate(body)]


def _wrong_types(types: set[str], formats: set[str]) -> list[Any]:
    wrong: list[Any] = []
    if types & {"integer", "number"}:
        wrong.append(True)
    if "boolean" in types:
        wrong.append(1)
    if formats & {"date", "date-time"}:
        wrong.append(86400)
    return wrong


@pytest.fixture
def example_world(
    world: World, session: Session, settings: Settings, lenient_breakers: None
) -> dict[str, int]:
    """What the request examples name, beside the security world: the example enterprise, the partner
    bank CCB_QJ, and claims of bank A on loans disbursed after its closed month (paid in 2022, so that
    the examples' recoveries fall after the payout)."""
    factories.make_enterprise(session, credit_code=EXAMPLE_CREDIT_CODE)
    factories.bank_caller(session, settings, "CCB_QJ")
    bank = bank_service.get_bank(session, world.bank_a.id)
    claims = []
    for n in (1, 2):
        start = date(2021, 7, 1)
        loan = loan_service.register_contract(
            session,
            settings,
            TEST_ACTOR,
            bank,
            bank_loan_ref=f"EX-NPL-{n}",
            credit_code=EXAMPLE_CREDIT_CODE,
            amount=Decimal("3000000.00"),
            annual_rate_pct=Decimal("4.35"),
            start_date=start,
            maturity_date=date(2022, 6, 30),
        )
        for day, event in (
            (start, Event(EventKind.disbursement, start, principal_fen=300_000_000)),
            (date(2022, 3, 31), Event(EventKind.delinquency, date(2022, 3, 31), days_past_due=95)),
        ):
            loan_service.post_event(
                session, settings, TEST_ACTOR, loan, event, bank_event_ref=f"EX-{n}-{day}"
            )
        claims.append(
            claim_service.file_claim(
                session, settings, TEST_ACTOR, bank, loan, principal_fen=300_000_000, day=date(2022, 4, 10)
            )
        )
    paid = claims[1]
    claim_service.approve(
        session,
        settings,
        TEST_ACTOR,
        paid,
        reviewer_id=world.officer.id,
        amount_fen=None,
        reason=None,
        day=date(2022, 4, 20),
    )
    claim_service.pay(session, settings, TEST_ACTOR, paid, payer_id=world.approver.id, day=date(2022, 4, 30))
    claim_service.report_recovery(
        session,
        TEST_ACTOR,
        paid,
        bank_ref="EX-REC-1",
        gross_fen=30_000_000,
        costs_fen=2_000_000,
        day=date(2022, 6, 5),
        today=date(2022, 6, 5),
    )
    session.commit()
    return {"submitted": claims[0].id, "paid": paid.id}


def _request_bodies(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, Any, dict[str, Any]]]:
    """(method, path, media type, example, schema) of every operation that takes a body."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            for media, spec in content.items():
                schema = spec["schema"]
                examples = (
                    [spec["example"]] if "example" in spec else _resolve(doc, schema).get("examples", [])
                )
                assert examples, f"{method.upper()} {path} has no request example"
                yield method.upper(), path, media, examples[0], schema


def _field_details(details: Any) -> list[dict[str, Any]]:
    """The details of an error, and those of each refused batch item."""
    out = []
    for d in details or []:
        if isinstance(d, dict):
            out.append(d)
            if "index" in d:
                out.extend(_field_details(d.get("details")))
    return out


def test_every_request_example_is_accepted_and_strict_about_json_types(
    app: FastAPI,
    client: TestClient,
    world: World,
    example_world: dict[str, int],
    connection: Connection,
    fresh_limits: RateLimiter,
) -> None:
    doc = app.openapi()
    claims = {
        "/api/v1/claims/{claim_id}/approve": example_world["submitted"],
        "/api/v1/claims/{claim_id}/reject": example_world["submitted"],
        "/api/v1/claims/{claim_id}/recoveries": example_world["paid"],
        "/api/v1/claims/{claim_id}/remittances": example_world["paid"],
        "/api/v1/claims/{claim_id}/close-collection": example_world["paid"],
    }
    refused, accepted, statuses = [], [], {}
    for method, path, media, example, schema in _request_bodies(doc):
        row = MATRIX[(method, path)]
        kind = next(k for k in KINDS if row.statuses()[k] not in (401, 403))  # one allowed to act
        params = {**world.path_params(), **(row.path(world) if row.path else {})}
        if path in claims:
            params["claim_id"] = claims[path]
        url = path.format_map(params)
        headers = world.headers(kind)

        def post(
            body: Any, request: tuple[str, str, str, dict[str, str]] = (method, url, media, headers)
        ) -> Any:
            verb, target, kind_of_body, sent = request
            fresh_limits.reset()
            savepoint = connection.begin_nested()
            try:
                if kind_of_body == "application/json":
                    return client.request(verb, target, json=body, headers=sent)
                return client.request(
                    verb, target, content=body.encode(), headers={**sent, "Content-Type": kind_of_body}
                )
            finally:
                savepoint.rollback()

        r = post(example)
        statuses[f"{method} {path}"] = r.status_code
        if r.status_code == 422 or r.status_code >= 500:
            refused.append(f"{method} {path} -> {r.status_code}: {r.text[:300]}")
        if media != "application/json":
            continue
        for leaf, types, formats in _leaves(doc, schema, example):
            for wrong in _wrong_types(types, formats):
                r = post(_replaced(example, leaf, wrong))
                field = ".".join(map(str, leaf))
                # the error names the field (a batch names it in the refusal of the item, by its index)
                named = r.status_code == 422 and any(
                    str(d.get("field") or "").split(".")[-1] == str(leaf[-1])
                    for d in _field_details(r.json()["error"]["details"])
                )
                if not named:
                    accepted.append(f"{method} {path} {field}={wrong!r} -> {r.status_code}")
    assert not refused, "request examples refused:\n" + "\n".join(refused)
    assert not accepted, "values of the wrong JSON type not refused:\n" + "\n".join(accepted)
    # most examples go all the way through (a few meet a state the world does not have, e.g. a lift)
    assert sum(200 <= s < 300 for s in statuses.values()) >= len(statuses) - 5, statuses
