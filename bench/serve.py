"""The real app with one extra route, for benchmarks only: `POST /bench/bare` inserts one row into
`bench_bare` and answers 201, with no authentication, validation, idempotency or audit — the floor
that a single write request through this app, its middleware and its session handling costs.

    python -m bench.serve --host 127.0.0.1 --port 8001

The route is added here, to an app built by `create_app()`; the application itself never has it. The
database needs the `bench_bare` table (`ensure_bare_table`).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import Engine, text

from loanfund.app import create_app
from loanfund.core.db import DbSession

BARE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, body text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now())"
)


def ensure_bare_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(BARE_TABLE))


def build() -> FastAPI:
    app = create_app()

    @app.post("/bench/bare", status_code=201, include_in_schema=False)
    def bare(session: DbSession) -> Response:
        # sync like the app's endpoints, one transaction like them; the request body is not read
        session.execute(text("INSERT INTO bench_bare (body) VALUES ('{}')"))
        return Response(b'{"ok":true}', status_code=201, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(build(), host=args.host, port=args.port, access_log=False, proxy_headers=True)


if __name__ == "__main__":
    main()
