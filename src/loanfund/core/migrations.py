"""Alembic, driven from code: `loanfund db upgrade`, `/readyz` and the tests share these helpers."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine


def project_root() -> Path:
    """The folder holding alembic.ini and migrations/: $LOANFUND_PROJECT_ROOT, the cwd, or the source tree."""
    env = os.environ.get("LOANFUND_PROJECT_ROOT")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd(), Path(__file__).resolve().parents[3]]
    for c in candidates:
        if (c / "alembic.ini").is_file() and (c / "migrations").is_dir():
            return c
    raise FileNotFoundError("alembic.ini not found; set LOANFUND_PROJECT_ROOT to the project folder")


def alembic_config(database_url: str | None = None) -> Config:
    root = project_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    if database_url is not None:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(bind: Engine | Connection) -> str | None:
    if isinstance(bind, Connection):
        return MigrationContext.configure(bind).get_current_revision()
    with bind.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
