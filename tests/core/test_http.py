"""The HTTP envelope: errors, request ids, security headers, body limit, health."""

from fastapi.testclient import TestClient

from tests.factories import Caller


def test_unknown_route_is_an_enveloped_404(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_method_not_allowed(client: TestClient) -> None:
    r = client.delete("/healthz")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert len(r.headers["x-request-id"]) == 32


def test_security_headers(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "access-control-allow-origin" not in r.headers


def test_malformed_json_is_422(client: TestClient, officer: Caller) -> None:
    r = client.post(
        "/api/v1/banks", content=b"{not json", headers={**officer.headers, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


def test_body_over_limit_is_413(client: TestClient, officer: Caller, settings: object) -> None:
    big = b"x" * (client.app.state.settings.max_body_bytes + 1)  # type: ignore[attr-defined]
    r = client.post(
        "/api/v1/banks", content=big, headers={**officer.headers, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["revision"] == body["head"] is not None


def test_openapi_groups_by_tag(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    tags = {t["name"] for t in doc["tags"]}
    assert {"bank", "bureau", "enterprise", "public"} <= tags
    assert "401" in doc["paths"]["/api/v1/banks"]["post"]["responses"]
