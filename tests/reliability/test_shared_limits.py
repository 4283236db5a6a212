"""Two server processes sharing Redis enforce one public rate limit together; without Redis each
process keeps its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.reliability.conftest import Server

LIMIT = 6


@pytest.fixture
def pair(
    fresh_database: str, tmp_path: Path, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Server, Server, str]]:
    prefix = f"loanfund-test-{uuid.uuid4().hex[:8]}"
    shared = request.param == "redis"
    servers = []
    for n in range(2):
        env = {
            **os.environ,
            "LOANFUND_ENV": "test",
            "LOANFUND_DATABASE_URL": fresh_database,
            "LOANFUND_SECRET_KEY": "shared-limits-" + "s" * 40,
            "LOANFUND_PUBLIC_RATE_LIMIT_PER_MINUTE": str(LIMIT),
            "LOANFUND_LOG_LEVEL": "WARNING",
            "LOANFUND_REDIS_KEY_PREFIX": prefix,
        }
        env.pop("LOANFUND_REDIS_URL", None)
        if shared:
            env["LOANFUND_REDIS_URL"] = redis_url
        servers.append(Server(database_url=fresh_database, env=env, log=tmp_path / f"server{n}.log"))
    servers[0].cli("db", "upgrade")
    try:
        for s in servers:
            s.start()
        yield servers[0], servers[1], prefix
    finally:
        for s in servers:
            s.stop()
        keys = redis.Redis.from_url(redis_url).keys(f"{prefix}*")
        if keys:
            redis.Redis.from_url(redis_url).delete(*keys)


def _statuses(a: Server, b: Server, n: int) -> list[int]:
    """n requests to a public page and a public API route, alternating between the two processes."""
    out = []
    for i in range(n):
        server = (a, b)[i % 2]
        path = "/api/v1/partner-banks" if i % 3 else "/"
        out.append(httpx.get(f"{server.url}{path}", timeout=10).status_code)
    return out


@pytest.mark.parametrize("pair", ["redis"], indirect=True)
def test_two_processes_sharing_redis_enforce_one_limit(
    pair: tuple[Server, Server, str], redis_url: str
) -> None:
    a, b, prefix = pair
    statuses = _statuses(a, b, 3 * LIMIT)
    assert statuses.count(200) == LIMIT  # not 2 × LIMIT
    assert statuses[:LIMIT] == [200] * LIMIT
    assert set(statuses[LIMIT:]) == {429}
    assert redis.Redis.from_url(redis_url).keys(f"{prefix}*")  # the windows are in Redis


@pytest.mark.parametrize("pair", ["memory"], indirect=True)
def test_without_redis_each_process_counts_alone(pair: tuple[Server, Server, str]) -> None:
    a, b, _ = pair
    statuses = _statuses(a, b, 3 * LIMIT)
    assert statuses.count(200) == 2 * LIMIT
