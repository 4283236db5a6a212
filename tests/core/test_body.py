"""A body validated from its raw bytes (`core.body`) is answered exactly as FastAPI's own parsing would."""

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from loanfund.core.body import validated_json_route
from loanfund.core.errors import install_error_handlers
from loanfund.loans.schemas import BatchCreate


def _app() -> FastAPI:
    def endpoint(body: BatchCreate) -> dict[str, Any]:
        return {"items": len(body.items), "first": body.items[0].model_dump(mode="json")}

    router = APIRouter()
    router.add_api_route("/plain", endpoint, methods=["POST"])
    router.add_api_route(
        "/fast", endpoint, methods=["POST"], route_class_override=validated_json_route(BatchCreate)
    )
    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    return app


CONTRACT = {
    "type": "contract",
    "bank_loan_ref": "L-1",
    "credit_code": "91110000MA00000000",
    "amount": "100000.00",
    "annual_rate_pct": "3.45",
    "start_date": "2021-03-01",
    "maturity_date": "2022-03-01",
}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"items": [%s]}' % str(CONTRACT).replace("'", '"').encode(), JSON),
        (
            b'{"items": [{"type": "repayment", "bank_loan_ref": "L-1", "bank_event_ref": "r",'
            b' "date": "2021-04-01", "principal": 12.5}]}',
            JSON,
        ),
        (b"{not json", JSON),
        (b'{"items": [', JSON),
        (b"\xff\xfe", JSON),
        (b"", JSON),
        (b"null", JSON),
        (b"[]", JSON),
        (b'{"items": []}', JSON),
        (b'{"items": [{"type": "nothing"}]}', JSON),
        (b'{"items": [{"type": "contract"}]}', JSON),
        (
            b'{"items": [{"type": "disbursement", "bank_loan_ref": "L-1", "bank_event_ref": "d",'
            b' "date": "2021-04-01", "amount": "-1", "extra": 1}]}',
            JSON,
        ),
        (
            b'{"items": [{"type": "delinquency", "bank_loan_ref": "L-1", "bank_event_ref": "q",'
            b' "date": 0, "days_past_due": NaN}]}',
            JSON,
        ),
        (b'{"items": [], "items": 3}', JSON),
        (b'{"items": []}', {"content-type": "text/plain"}),
        (b'{"items": []}', {}),
    ],
)
def test_same_answer_as_fastapi_parsing(body: bytes, headers: dict[str, str]) -> None:
    client = TestClient(_app())
    plain = client.post("/plain", content=body, headers=headers)
    fast = client.post("/fast", content=body, headers=headers)
    assert (fast.status_code, fast.json()) == (plain.status_code, plain.json())


def test_openapi_body_is_the_model() -> None:
    paths = _app().openapi()["paths"]
    assert paths["/fast"]["post"]["requestBody"] == paths["/plain"]["post"]["requestBody"]
