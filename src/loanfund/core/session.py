"""A transaction outside a request (CLI, demo, benchmarks): commit on success, roll back on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from loanfund.core.db import make_sessionmaker


@contextmanager
def transaction(bind: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction, from an engine or a sessionmaker already made."""
    session = (make_sessionmaker(bind) if isinstance(bind, Engine) else bind)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
