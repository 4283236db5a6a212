"""The browser-test harness, for every page test (portal and console): one live server and one headless
Chromium per test session.

- `live_server`: `loanfund serve` (uvicorn) in a subprocess on a free loopback port, against a fresh
  database of the run's backend (`--db sqlite|postgres`), migrated; seed it with committed data through
  the services in `live_server.transaction()`.
- `browser`: Debian's Chromium (`/usr/bin/chromium`, or `LOANFUND_CHROMIUM`) driven by Playwright.
  Missing browser → the test FAILS: `make browser` (run by `make test` and `.ci/run`) installs it.
- `phone` / `desktop`: a fresh browser context (cookies and all) at 375×812 (touch) or 1280×900, in
  Chinese; `page_at(kind)` for tests parametrised over both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from loanfund.core.config import Settings
from loanfund.core.db import make_engine
from loanfund.core.session import transaction
from tests import databases
from tests.servers import Server

LIVE_SECRET = "live-server-" + "k" * 40
CHROMIUM = os.environ.get("LOANFUND_CHROMIUM", "/usr/bin/chromium")
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {
        "viewport": {"width": 375, "height": 812},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}


@dataclass
class LiveServer:
    server: Server
    settings: Settings  # the settings the server runs with (same database and secret)
    engine: Engine

    @property
    def url(self) -> str:
        return self.server.url

    def transaction(self) -> AbstractContextManager[Session]:
        """A committed transaction on the server's database, for seeding and checking."""
        return transaction(self.engine)


@pytest.fixture(scope="session")
def live_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    maintenance = os.environ.get(
        "LOANFUND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    tmp = tmp_path_factory.mktemp("live")
    with databases.fresh_database(backend, maintenance, tmp, "loanfund_live") as url:
        env = {
            **os.environ,
            "LOANFUND_ENV": "test",
            "LOANFUND_DATABASE_URL": url,
            "LOANFUND_SECRET_KEY": LIVE_SECRET,
            "LOANFUND_LOG_LEVEL": "WARNING",
            # one browser makes every request from 127.0.0.1: the limits get their own tests
            "LOANFUND_PUBLIC_RATE_LIMIT_PER_MINUTE": "100000",
            "LOANFUND_STATUS_TOKEN_FAILURE_LIMIT": "100000",
        }
        env.pop("LOANFUND_REDIS_URL", None)
        server = Server(database_url=url, env=env, log=tmp / "server.log")
        server.cli("db", "upgrade")
        settings = Settings(env="test", database_url=url, secret_key=LIVE_SECRET)  # type: ignore[arg-type]
        engine = make_engine(settings)
        server.start()
        try:
            yield LiveServer(server=server, settings=settings, engine=engine)
        finally:
            server.stop()
            engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium chromium-driver "
            "fonts-noto-cjk) or set LOANFUND_CHROMIUM. Browser tests never skip."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page_at(browser: Any, live_server: LiveServer) -> Iterator[Callable[..., Any]]:
    """`page_at("phone")` / `page_at("desktop", java_script_enabled=False)`: a page in a new context
    whose relative URLs go to the live server."""
    contexts: list[Any] = []

    def make(kind: str, **options: Any) -> Any:
        ctx = browser.new_context(base_url=live_server.url, locale="zh-CN", **{**VIEWPORTS[kind], **options})
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def phone(page_at: Callable[..., Any]) -> Any:
    return page_at("phone")


@pytest.fixture
def desktop(page_at: Callable[..., Any]) -> Any:
    return page_at("desktop")
