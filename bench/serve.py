"""The real app with two extra routes, for benchmarks only:

* `POST /bench/bare` inserts one row into `bench_bare` and answers 201, with no authentication,
  validation, idempotency or audit — the floor that a single write request through this app, its
  middleware and its session handling costs;
* `GET /bench/loan-register.csv` streams every loan as a CSV report through the app's export kit
  (`reports.export`) and a streamed query (`reports.repository.stream`), as a million-row register
  would be: the memory benchmark's million-row export (the app's own registers are smaller: overdue
  loans, claims, discrepancies).

    python -m bench.serve --host 127.0.0.1 --port 8001

The route is added here, to an app built by `create_app()`; the application itself never has it. The
database needs the `bench_bare` table (`ensure_bare_table`).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Response
from sqlalchemy import Engine, select, text

from loanfund.app import create_app
from loanfund.banks.models import Bank
from loanfund.core.auth import BureauReader
from loanfund.core.db import DbSession
from loanfund.enterprises.models import Enterprise
from loanfund.loans.models import Loan
from loanfund.reports.export import Column, ColumnKind, Report, ReportFormat, Section, render
from loanfund.reports.repository import stream
from loanfund.reports.router import ReportSession

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

    @app.get("/bench/loan-register.csv", include_in_schema=False)
    def loan_register(session: ReportSession, caller: BureauReader) -> Response:
        stmt = (
            select(
                Loan.id,
                Bank.code.label("bank_code"),
                Loan.bank_loan_ref,
                Enterprise.credit_code,
                Loan.state,
                Loan.contract_amount_fen,
                Loan.outstanding_fen,
                Loan.start_date,
                Loan.maturity_date,
            )
            .join(Bank, Bank.id == Loan.bank_id)
            .join(Enterprise, Enterprise.id == Loan.enterprise_id)
            .order_by(Loan.id)
        )
        rows = (
            {
                "loan_id": m["id"],
                "bank_code": m["bank_code"],
                "bank_loan_ref": m["bank_loan_ref"],
                "credit_code": m["credit_code"],
                "state": str(m["state"]),
                "amount": int(m["contract_amount_fen"]),
                "outstanding": int(m["outstanding_fen"]),
                "start_date": m["start_date"],
                "maturity_date": m["maturity_date"],
            }
            for m in stream(session, stmt)
        )
        columns = [
            Column("loan_id", "贷款编号", "Loan id", ColumnKind.int),
            Column("bank_code", "银行", "Bank"),
            Column("bank_loan_ref", "合同号", "Contract ref"),
            Column("credit_code", "统一社会信用代码", "Credit code"),
            Column("state", "状态", "State"),
            Column("amount", "合同金额", "Amount", ColumnKind.amount),
            Column("outstanding", "贷款余额", "Outstanding", ColumnKind.amount),
            Column("start_date", "起始日", "Start", ColumnKind.date),
            Column("maturity_date", "到期日", "Maturity", ColumnKind.date),
        ]
        report = Report(
            "贷款台账",
            "Loan register",
            "全部 / all",
            datetime.now(UTC),
            [Section("贷款台账", "Loan register", "loans", columns, rows)],
        )
        return render(report, ReportFormat.csv, "loan-register")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(build(), host=args.host, port=args.port, access_log=False, proxy_headers=True)


if __name__ == "__main__":
    main()
