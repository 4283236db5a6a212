from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from loanfund.core.ratelimit import RateLimiter


@pytest.fixture(autouse=True)
def fresh_limits(app: FastAPI) -> Iterator[RateLimiter]:
    """Every test starts with empty rate-limit windows (all test requests share one client address)."""
    limiter: RateLimiter = app.state.rate_limiter
    limiter.reset()
    yield limiter
    limiter.reset()
