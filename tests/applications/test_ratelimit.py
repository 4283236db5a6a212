"""Rate limits on the public endpoints, and the limiter itself."""

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.ratelimit import RateLimiter
from tests.factories import Caller, application_payload, credit_code, make_enterprise

URL = "/api/v1/applications"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_and_wait() -> None:
    clock = FakeClock()
    rl = RateLimiter(clock)
    assert [rl.hit("b", "k", limit=3, window_s=60) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert rl.hit("b", "k", limit=3, window_s=60) == pytest.approx(50)
    assert rl.hit("b", "other", limit=3, window_s=60) == 0.0  # per key
    assert rl.hit("other-bucket", "k", limit=3, window_s=60) == 0.0  # per bucket
    assert rl.wait("b", "k", limit=3, window_s=60) == pytest.approx(50)
    clock.now += 50
    assert rl.wait("b", "k", limit=3, window_s=60) == 0.0
    assert rl.hit("b", "k", limit=3, window_s=60) == 0.0
    rl.reset()
    assert rl.wait("b", "k", limit=1, window_s=60) == 0.0


def test_refused_requests_are_not_counted() -> None:
    clock = FakeClock()
    rl = RateLimiter(clock)
    rl.hit("b", "k", limit=1, window_s=10)
    for _ in range(100):
        assert rl.hit("b", "k", limit=1, window_s=10) > 0
    clock.now += 10
    assert rl.hit("b", "k", limit=1, window_s=10) == 0.0


def test_idle_keys_are_swept() -> None:
    clock = FakeClock()
    rl = RateLimiter(clock)
    for i in range(3000):
        rl.hit("b", f"addr-{i}", limit=5, window_s=1)
        clock.now += 0.01
    clock.now += 5
    for _ in range(1100):
        rl.hit("b", "fresh", limit=10**6, window_s=1)
    assert len(rl._events) < 100


def test_the_limit_holds_across_threads() -> None:
    rl = RateLimiter()
    allowed: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            wait = rl.hit("b", "k", limit=100, window_s=60)
            if wait == 0.0:
                with lock:
                    allowed.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 100


def test_public_endpoints_are_rate_limited_per_address(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "public_rate_limit_per_minute", 3)
    ent = make_enterprise(session)
    first = client.post(URL, json=application_payload(ent.credit_code, "BANK_A"))
    assert first.status_code == 201
    assert client.post(URL, json={"not": "an application"}).status_code == 422  # still counted
    token = first.json()["status_token"]
    number = first.json()["application_no"]
    assert client.get(f"{URL}/{number}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    for r in (
        client.post(URL, json=application_payload(credit_code(), "BANK_A")),
        client.get(f"{URL}/{number}", headers={"Authorization": f"Bearer {token}"}),
    ):
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    # keyed endpoints are not affected
    assert client.get("/api/v1/bank/applications", headers=bank_a.headers).status_code == 200


def test_wrong_tokens_use_up_a_stricter_budget(
    client: TestClient, session: Session, bank_a: Caller, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "public_rate_limit_per_minute", 1000)
    ent = make_enterprise(session)
    body = client.post(URL, json=application_payload(ent.credit_code, "BANK_A")).json()
    number, token = body["application_no"], body["status_token"]
    for i in range(settings.status_token_failure_limit):
        r = client.get(f"{URL}/{number}", headers={"Authorization": f"Bearer lft_guess{i}"})
        assert r.status_code == 404
    # the right token is refused too until the window moves on: guessing cannot tell them apart
    r = client.get(f"{URL}/{number}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= settings.status_token_failure_window_s
