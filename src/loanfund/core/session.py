"""A transaction outside a request (CLI, demo, benchmarks): commit on success, roll back on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loanfund.core.db import make_sessionmaker


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    session = make_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
