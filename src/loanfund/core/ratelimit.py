"""Rate limits for the public (keyless) endpoints: a sliding window per client address.

The limiter keeps its counters in memory, so **limits are per process**: with `--workers N` (or several
instances behind a balancer) a client may make up to N times the configured number of requests. Put a
shared limiter in front (the reverse proxy) when that matters; this one is the floor, not the wall.

The key is the peer address the server saw (`request.client.host`) and nothing else: headers such as
`X-Forwarded-For` are set by the client and would let it choose its own bucket. Behind a reverse proxy,
run uvicorn with `--proxy-headers --forwarded-allow-ips=<proxy>` so that the peer address is the client's.

Two budgets use it: every request to a public endpoint (`public_rate_limit_per_minute`) and, stricter,
every wrong status token an address presents (`status_token_failure_limit` per
`status_token_failure_window_s`) so that guessing tokens or application numbers is slow.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request

from loanfund.core.config import Settings
from loanfund.core.errors import RateLimited

PUBLIC = "public"
TOKEN_FAILURES = "status_token_failures"
_SWEEP_EVERY = 1024


class RateLimiter:
    """Sliding-window log: a key may have at most `limit` events in any `window_s` seconds. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._calls = 0

    def hit(self, bucket: str, key: str, *, limit: int, window_s: float) -> float:
        """Count one event. Returns 0 if it is allowed, else the seconds until one would be (not counted)."""
        with self._lock:
            now = self._clock()
            events = self._current(bucket, key, window_s, now)
            if len(events) >= limit:
                return self._wait(events, limit, window_s, now)
            events.append(now)
            self._maybe_sweep(now)
            return 0.0

    def wait(self, bucket: str, key: str, *, limit: int, window_s: float) -> float:
        """Seconds until `key` may have another event in `bucket` (0 if now), without counting one."""
        with self._lock:
            now = self._clock()
            events = self._current(bucket, key, window_s, now)
            return self._wait(events, limit, window_s, now) if len(events) >= limit else 0.0

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._windows.clear()
            self._calls = 0

    def _current(self, bucket: str, key: str, window_s: float, now: float) -> deque[float]:
        self._windows[bucket] = window_s
        events = self._events.setdefault((bucket, key), deque())
        while events and events[0] <= now - window_s:
            events.popleft()
        return events

    @staticmethod
    def _wait(events: deque[float], limit: int, window_s: float, now: float) -> float:
        # The oldest event that keeps the count at the limit must leave the window first.
        return max(events[len(events) - limit] + window_s - now, 0.001)

    def _maybe_sweep(self, now: float) -> None:
        """Forget addresses whose events have all left their window, so memory follows active clients."""
        self._calls += 1
        if self._calls % _SWEEP_EVERY:
            return
        stale = [
            k for k, ev in self._events.items() if not ev or ev[-1] <= now - self._windows.get(k[0], 0.0)
        ]
        for k in stale:
            del self._events[k]


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
