"""Rate limits for the public (keyless) endpoints and pages: a moving window per client address.

The windows are kept by the `limits` library (its moving-window strategy: at most `limit` events in any
`window_s` seconds). With `LOANFUND_REDIS_URL` set they live in Redis, so every process and host behind
the same Redis enforces one limit together; without it each process keeps its own in memory, and with
`--workers N` a client may make up to N times the configured number of requests. If Redis stops
answering, each process falls back to its own memory (logged) rather than refusing every public request.

The key is the peer address the server saw (`request.client.host`) and nothing else: headers such as
`X-Forwarded-For` are set by the client and would let it choose its own bucket. Behind a reverse proxy,
run uvicorn with `--proxy-headers --forwarded-allow-ips=<proxy>` so that the peer address is the client's.

Two budgets use it: every request to a public endpoint or page (`public_rate_limit_per_minute`) and,
stricter, every wrong status token an address presents (`status_token_failure_limit` per
`status_token_failure_window_s`) so that guessing tokens or application numbers is slow.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from loanfund.core.config import Settings
from loanfund.core.errors import RateLimited

log = logging.getLogger("loanfund.ratelimit")
PUBLIC = "public"
TOKEN_FAILURES = "status_token_failures"
_SWEEP_EVERY = 1024


class RateLimiter:
    """`hit` counts an event and says how long to wait if it was refused; `wait` only asks. Thread-safe
    (the storages are). `storage_uri`: `memory://` (this process) or `redis://host:port/db` (shared)."""

    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        prefix: str = "loanfund",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shared = not storage_uri.startswith("memory")
        options = {"key_prefix": f"{prefix}:limits"} if self.shared else {}
        storage = storage_from_string(storage_uri, wrap_exceptions=True, **options)
        assert isinstance(storage, Storage)  # a sync storage: the endpoints are sync
        self.storage: Storage = storage
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._local = MovingWindowRateLimiter(self._local_storage())  # the fallback while Redis is away
        self._clock = clock
        self._calls = 0
        self._warned_at = 0.0

    def _local_storage(self) -> MemoryStorage:
        return self.storage if isinstance(self.storage, MemoryStorage) else MemoryStorage()

    @staticmethod
    def _item(limit: int, window_s: float) -> RateLimitItem:
        return RateLimitItemPerSecond(limit, max(1, math.ceil(window_s)))

    def _call(self, fn: Callable[[MovingWindowRateLimiter], float]) -> float:
        try:
            return fn(self._limiter)
        except StorageError as exc:
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                log.warning("rate-limit storage unavailable, limiting per process: %s", exc)
            return fn(self._local)

    def hit(self, bucket: str, key: str, *, limit: int, window_s: float) -> float:
        """Count one event. Returns 0 if it is allowed, else the seconds until one would be (not counted)."""
        item = self._item(limit, window_s)

        def run(limiter: MovingWindowRateLimiter) -> float:
            if limiter.hit(item, bucket, key):
                return 0.0
            return self._until_free(limiter, item, bucket, key)

        wait = self._call(run)
        self._maybe_sweep()
        return wait

    def wait(self, bucket: str, key: str, *, limit: int, window_s: float) -> float:
        """Seconds until `key` may have another event in `bucket` (0 if now), without counting one."""
        item = self._item(limit, window_s)

        def run(limiter: MovingWindowRateLimiter) -> float:
            return 0.0 if limiter.test(item, bucket, key) else self._until_free(limiter, item, bucket, key)

        return self._call(run)

    def _until_free(self, limiter: MovingWindowRateLimiter, item: RateLimitItem, *ids: str) -> float:
        # the window frees a place when the oldest event in it leaves
        reset_at, _ = limiter.get_window_stats(item, *ids)
        return max(reset_at - self._clock(), 0.001)

    def reset(self) -> None:
        """Forget every window (this limiter's keys only, in Redis)."""
        for storage in {id(s): s for s in (self.storage, self._local.storage)}.values():
            storage.reset()

    def _maybe_sweep(self) -> None:
        """Drop the in-memory entries of addresses whose windows are empty, so memory follows the active
        clients (the storage empties their lists but keeps the keys)."""
        self._calls += 1
        if self._calls % _SWEEP_EVERY:
            return
        for limiter in (self._limiter, self._local):
            storage = limiter.storage
            if isinstance(storage, MemoryStorage):
                for key in [k for k, events in list(storage.events.items()) if not events]:
                    storage.events.pop(key, None)


def limiter_for(settings: Settings) -> RateLimiter:
    """The limiter of one app: shared through Redis when `redis_url` is set, else this process's own."""
    if settings.redis_url:
        return RateLimiter(settings.redis_url, prefix=settings.redis_key_prefix)
    return RateLimiter()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def _refuse(wait_s: float, message: str) -> RateLimited:
    seconds = max(1, math.ceil(wait_s))
    return RateLimited(message, details={"retry_after_s": seconds}, headers={"Retry-After": str(seconds)})


def limit_public(request: Request) -> None:
    """Dependency for every public endpoint: `public_rate_limit_per_minute` per client address."""
    settings: Settings = request.app.state.settings
    wait = _limiter(request).hit(
        PUBLIC, client_address(request), limit=settings.public_rate_limit_per_minute, window_s=60
    )
    if wait:
        raise _refuse(wait, "Too many requests from this address; retry later")


def check_token_failures(request: Request) -> None:
    """Dependency: refuse an address that has used up its budget of wrong status tokens."""
    settings: Settings = request.app.state.settings
    wait = _limiter(request).wait(
        TOKEN_FAILURES,
        client_address(request),
        limit=settings.status_token_failure_limit,
        window_s=settings.status_token_failure_window_s,
    )
    if wait:
        raise _refuse(wait, "Too many wrong status tokens from this address; retry later")


def count_token_failure(request: Request) -> None:
    """Count one wrong status token (or unknown application number) against the caller's address."""
    settings: Settings = request.app.state.settings
    _limiter(request).hit(
        TOKEN_FAILURES,
        client_address(request),
        limit=settings.status_token_failure_limit,
        window_s=settings.status_token_failure_window_s,
    )
