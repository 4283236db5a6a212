"""Rate limits on the public endpoints, and the limiter itself."""

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import limits.storage.memory
import limits.storage.redis
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.ratelimit import _SWEEP_EVERY, RateLimiter, limiter_for
from tests.factories import Caller, application_payload, credit_code, make_enterprise

URL = "/api/v1/applications"


class FakeClock:
    """Stands in for `time` in the storages of `limits` (they read `time.time()`), and for the limiter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def make_limiter(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RateLimiter]]:
    """A limiter on each storage: this process's memory, and Redis (shared by processes), under a key
    prefix of its own."""
    made: list[RateLimiter] = []

    def make(clock: FakeClock | None = None) -> RateLimiter:
        if clock is not None:
            monkeypatch.setattr(limits.storage.memory, "time", clock)
            monkeypatch.setattr(limits.storage.redis, "time", clock)
        if request.param == "memory":
            rl = RateLimiter(clock=clock or time.time)
        else:
            url = request.getfixturevalue("redis_url")
            rl = RateLimiter(url, prefix=f"loanfund-test-{uuid.uuid4().hex[:8]}", clock=clock or time.time)
        made.append(rl)
        return rl

    yield make
    for rl in made:
        rl.reset()


def test_sliding_window_and_wait(make_limiter: Callable[..., RateLimiter]) -> None:
    clock = FakeClock()
    rl = make_limiter(clock)
    assert [rl.hit("b", "k", limit=3, window_s=60) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert rl.hit("b", "k", limit=3, window_s=60) == pytest.approx(50)
    assert rl.hit("b", "other", limit=3, window_s=60) == 0.0  # per key
    assert rl.hit("other-bucket", "k", limit=3, window_s=60) == 0.0  # per bucket
    assert rl.wait("b", "k", limit=3, window_s=60) == pytest.approx(50)
    clock.now += 50.001
    assert rl.wait("b", "k", limit=3, window_s=60) == 0.0
    assert rl.hit("b", "k", limit=3, window_s=60) == 0.0
    rl.reset()
    assert rl.wait("b", "k", limit=1, window_s=60) == 0.0


def test_refused_requests_are_not_counted(make_limiter: Callable[..., RateLimiter]) -> None:
    clock = FakeClock()
    rl = make_limiter(clock)
    rl.hit("b", "k", limit=1, window_s=10)
    for _ in range(100):
        assert rl.hit("b", "k", limit=1, window_s=10) > 0
    clock.now += 10.001
    assert rl.hit("b", "k", limit=1, window_s=10) == 0.0


def test_idle_keys_are_swept() -> None:
    """In memory, the addresses whose windows have emptied are forgotten: memory follows active clients."""
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(limits.storage.memory, "time", clock)
        rl = RateLimiter(clock=clock)
        for i in range(3000):
            rl.hit("b", f"addr-{i}", limit=5, window_s=1)
            clock.now += 0.01
        clock.now += 5
        deadline = time.monotonic() + 5
        for _ in range(1100):
            rl.hit("b", "fresh", limit=10**6, window_s=1)
        while len(rl.storage.events) >= 100 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.02)  # the storage empties expired windows on its own timer
            for _ in range(_SWEEP_EVERY):
                rl.hit("b", "fresh", limit=10**6, window_s=1)
        assert len(rl.storage.events) < 100  # type: ignore[attr-defined]


def test_the_limit_holds_across_threads(make_limiter: Callable[..., RateLimiter]) -> None:
    rl = make_limiter()
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


def test_redis_away_falls_back_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing answers on the port: each process limits on its own rather than refusing everyone."""
    rl = RateLimiter("redis://127.0.0.1:1/0?socket_connect_timeout=0.2", prefix="loanfund-test-away")
    assert [rl.hit("b", "k", limit=2, window_s=60) for _ in range(2)] == [0.0, 0.0]
    assert rl.hit("b", "k", limit=2, window_s=60) > 0
    assert "limiting per process" in caplog.text


@pytest.fixture(params=["memory", "redis"])
def app_limiter(request: pytest.FixtureRequest, app: FastAPI) -> Iterator[RateLimiter]:
    """The app's limiter on each storage (the app builds it from `redis_url`: `limiter_for`)."""
    original = app.state.rate_limiter
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"loanfund-test-{uuid.uuid4().hex[:8]}"
        limiter = limiter_for(Settings(redis_url=url, redis_key_prefix=prefix))
        assert limiter.shared
    else:
        limiter = limiter_for(Settings(redis_url=None))
        assert not limiter.shared
    app.state.rate_limiter = limiter
    yield limiter
    limiter.reset()
    app.state.rate_limiter = original


def test_public_endpoints_are_rate_limited_per_address(
    app_limiter: RateLimiter,
    client: TestClient,
    session: Session,
    bank_a: Caller,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
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
    app_limiter: RateLimiter,
    client: TestClient,
    session: Session,
    bank_a: Caller,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
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
