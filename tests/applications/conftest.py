from collections.abc import Callable, Iterator
from datetime import date

import pytest
from fastapi import FastAPI

from loanfund.applications.router import today
from loanfund.core.ratelimit import RateLimiter


@pytest.fixture(autouse=True)
def fresh_limits(app: FastAPI) -> Iterator[RateLimiter]:
    """Every test starts with empty rate-limit windows (all test requests share one client address)."""
    limiter: RateLimiter = app.state.rate_limiter
    limiter.reset()
    yield limiter
    limiter.reset()


@pytest.fixture
def on_day(app: FastAPI) -> Iterator[Callable[[date], None]]:
    """Set the business date the API sees (application and decision dates)."""

    def set_day(day: date) -> None:
        app.dependency_overrides[today] = lambda: day

    yield set_day
    app.dependency_overrides.pop(today, None)
