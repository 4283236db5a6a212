"""Migrations and models agree (no drift), and the chain goes down and up again on this backend."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from loanfund.core.migrations import alembic_config, current_revision, head_revision
from loanfund.models import Base


def test_database_is_at_head_without_drift(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(settings_url_fresh: str) -> None:
    cfg = alembic_config(settings_url_fresh)
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
