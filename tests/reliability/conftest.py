"""Real server processes on a fresh database of the suite's backend (committed data, no rollback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, Server, free_port

__all__ = ["ROOT", "Server", "free_port"]


@pytest.fixture
def server(fresh_database: str, tmp_path: Path) -> Iterator[Server]:
    env = {
        **os.environ,
        "LOANFUND_ENV": "test",
        "LOANFUND_DATABASE_URL": fresh_database,
        "LOANFUND_SECRET_KEY": "reliability-" + "s" * 40,
        "LOANFUND_DB_POOL_TIMEOUT_S": "3",
        "LOANFUND_DB_CONNECT_TIMEOUT_S": "2",
    }
    srv = Server(database_url=fresh_database, env=env, log=tmp_path / "server.log")
    srv.cli("db", "upgrade")
    try:
        yield srv
    finally:
        srv.stop()
