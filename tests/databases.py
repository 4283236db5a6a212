"""Fresh, empty databases of the suite's backend, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text


@contextmanager
def fresh_database(
    backend: str, server_url: str, directory: Path, prefix: str = "loanfund_fresh"
) -> Iterator[str]:
    """An empty database (no schema): a new SQLite file in `directory`, or a new PostgreSQL database on
    the server of `server_url`."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{prefix}-{uuid.uuid4().hex[:8]}.db'}"
        return
    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
