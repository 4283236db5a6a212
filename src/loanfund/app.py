"""create_app(): settings, database, middleware, error handlers and routers — nothing else."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from loanfund import __version__
from loanfund.applications.router import router as applications_router
from loanfund.audit.router import router as audit_router
from loanfund.banks.router import public_router as partner_banks_router
from loanfund.banks.router import router as banks_router
from loanfund.claims.router import router as claims_router
from loanfund.core.config import Settings, get_settings
from loanfund.core.db import make_engine, make_sessionmaker
from loanfund.core.docs import install_docs
from loanfund.core.errors import install_error_handlers
from loanfund.core.group_commit import GroupCommit
from loanfund.core.logging import configure_logging
from loanfund.core.middleware import RequestContextMiddleware, document_body_limit
from loanfund.core.migrations import head_revision
from loanfund.core.openapi import document_max_items
from loanfund.core.params import single_valued_query
from loanfund.core.ratelimit import limiter_for
from loanfund.enterprises.router import router as enterprises_router
from loanfund.fund.oversight_router import router as fund_oversight_router
from loanfund.fund.router import router as fund_router
from loanfund.loans import group_commit
from loanfund.loans.router import router as loans_router
from loanfund.ops.router import router as ops_router
from loanfund.rates.router import router as rates_router
from loanfund.reports.router import router as reports_router
from loanfund.risk.router import router as risk_router
from loanfund.staff.router import router as staff_router
from loanfund.status_reports.router import router as status_reports_router
from loanfund.web import console, pages
from loanfund.web.portal import router as portal
from loanfund.webhooks.router import router as webhooks_router

TAGS = [
    {"name": "bank", "description": "Partner banks: their profile, loans, events, reports and claims"},
    {"name": "bureau", "description": "Bureau staff: registry, review, fund and oversight"},
    {"name": "enterprise", "description": "Enterprises: applications and their status"},
    {"name": "public", "description": "No key needed"},
]


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # sync endpoints run in anyio's default thread pool (40 threads unless set; see README)
        if settings.threadpool_size is not None:
            to_thread.current_default_thread_limiter().total_tokens = settings.threadpool_size
        if settings.gc_gen0_threshold:
            tune_gc(settings.gc_gen0_threshold)
        yield

    return lifespan


def tune_gc(gen0_threshold: int) -> None:
    """Keep the cyclic garbage collector off the request path.

    A request of thousands of items (a batch) keeps a few hundred thousand objects alive until it
    answers. With Python's defaults (a young collection every 700 allocations) they outlive the young
    generations, and every few such requests trigger a full collection, which also walks everything
    loaded at startup (modules, models, schemas): a quarter to a third of a batch's CPU went there.
    So what exists once the app has started is moved out of the collector's sight (`gc.freeze`), and
    the youngest generation is collected every `gen0_threshold` allocations. Memory is still freed by
    reference counting as before; only reference cycles wait longer to be collected."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(settings.log_level, settings.log_json)
    engine = engine or make_engine(settings)

    app = FastAPI(
        title="loanfund",
        version=__version__,
        description=(
            "Knowledge-value credit loans for technology SMEs and the district risk compensation fund. "
            "Amounts are decimal strings in yuan with two places; business dates are Asia/Shanghai dates; "
            'timestamps are UTC. Errors are `{"error": {"code", "message", "details"}}`.'
        ),
        openapi_tags=TAGS,
        docs_url=None,  # served with their own assets: core/docs.py
        redoc_url=None,
        lifespan=_lifespan(settings),
        dependencies=[Depends(single_valued_query)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.head_revision = head_revision()
    app.state.rate_limiter = limiter_for(settings)  # shared through Redis if set; see core/ratelimit.py
    app.state.single_events = GroupCommit(
        partial(group_commit.post_many, settings),
        max_group=settings.group_commit_max_items,
        leaders=settings.group_commit_leaders,
    )

    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    document_body_limit(app, settings.max_body_bytes)
    document_max_items(app, "BatchCreate", "items", settings.batch_max_items)
    install_docs(app)

    routers = (
        ops_router,
        risk_router,  # before the banks' routes: /banks/ratings is not /banks/{bank_id}
        banks_router,
        partner_banks_router,
        enterprises_router,
        rates_router,
        applications_router,
        loans_router,
        fund_router,
        fund_oversight_router,
        claims_router,
        status_reports_router,
        reports_router,
        staff_router,
        audit_router,
        webhooks_router,
    )
    for router in routers:
        app.include_router(router)
    pages.install(app)  # static files and HTML error pages for the pages (web/)
    app.include_router(portal.router)
    pages.mount_static(app, "portal", portal.STATIC)
    console.install(app)  # the bureau console at /console/
    return app
