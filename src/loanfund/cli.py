"""The `loanfund` command: serve, migrate, manage banks, staff and keys, seed demo data."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from sqlalchemy import select

from loanfund.audit.service import Actor
from loanfund.banks import repository as bank_repo
from loanfund.banks import service as bank_service
from loanfund.core.config import get_settings
from loanfund.core.db import make_engine
from loanfund.core.errors import LoanfundError
from loanfund.core.migrations import upgrade
from loanfund.core.session import transaction
from loanfund.rules import loan_rules
from loanfund.staff import service as staff_service
from loanfund.staff.models import ApiKey, Role

app = typer.Typer(
    help="loanfund: knowledge-value credit loans and the risk compensation fund", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
bank_app = typer.Typer(help="Partner banks", no_args_is_help=True)
bank_key_app = typer.Typer(help="Bank API keys", no_args_is_help=True)
staff_app = typer.Typer(help="Bureau staff", no_args_is_help=True)
staff_key_app = typer.Typer(help="Staff API keys", no_args_is_help=True)
fund_app = typer.Typer(help="The risk compensation fund", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(bank_app, name="bank")
bank_app.add_typer(bank_key_app, name="key")
app.add_typer(staff_app, name="staff")
staff_app.add_typer(staff_key_app, name="key")
app.add_typer(fund_app, name="fund")
portfolio_app = typer.Typer(help="The loan book's maintained aggregates", no_args_is_help=True)
app.add_typer(portfolio_app, name="portfolio")
idempotency_app = typer.Typer(help="Stored idempotent responses", no_args_is_help=True)
app.add_typer(idempotency_app, name="idempotency")
webhooks_app = typer.Typer(help="Webhook events and deliveries", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
ratings_app = typer.Typer(help="Partner banks' monthly risk ratings", no_args_is_help=True)
app.add_typer(ratings_app, name="ratings")

CLI = Actor(kind="system", id=None, name="cli")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code change (development)")] = False,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    get_settings().check_production()
    uvicorn.run(
        "loanfund.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        access_log=False,
        proxy_headers=True,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Messages in flight (LOANFUND_WEBHOOK_WORKER_CONCURRENCY)")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due now, then exit")] = False,
) -> None:
    """Deliver webhook events to the banks' endpoints until stopped (SIGTERM or Ctrl-C)."""
    import signal

    from loanfund.core.db import make_sessionmaker
    from loanfund.core.logging import configure_logging
    from loanfund.webhooks.worker import Worker

    settings = get_settings()
    settings.check_production()
    configure_logging(settings.log_level, settings.log_json)
    engine = make_engine(settings)
    runner = Worker(
        settings,
        make_sessionmaker(engine),
        concurrency=concurrency,
        listen=None if settings.is_sqlite else engine,
    )
    if once:
        sent = runner.run_once(limit=10_000)
        typer.echo(f"{sent} deliveries attempted")
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    runner.run()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision")] = "head") -> None:
    """Apply migrations (the app never creates tables itself)."""
    settings = get_settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@bank_app.command("create")
def bank_create(
    name: Annotated[str, typer.Option(help="Bank name")],
    code: Annotated[str, typer.Option(help="Short code, A-Z 0-9 _")],
    fund_share: Annotated[str | None, typer.Option(help="Fund share of principal losses, e.g. 0.80")] = None,
    lending_quota: Annotated[str | None, typer.Option(help="Lending quota in yuan")] = None,
    allow_contracts_without_application: Annotated[
        bool,
        typer.Option(
            "--allow-contracts-without-application",
            help="Let the bank register contracts without an application (historical imports)",
        ),
    ] = False,
) -> None:
    """Create a partner bank and print its first key (alone on the last line)."""
    from loanfund.banks.schemas import BankCreate

    settings = get_settings()
    try:
        body = BankCreate(
            code=code,
            name=name,
            fund_share=_decimal(fund_share) if fund_share else None,
            lending_quota=_decimal(lending_quota) if lending_quota else None,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    engine = make_engine(settings)
    try:
        with transaction(engine) as session:
            bank = bank_service.create_bank(
                session,
                CLI,
                code=body.code,
                name=body.name,
                fund_share=body.fund_share or settings.default_fund_share,
                lending_quota=body.lending_quota,
                allow_contracts_without_application=allow_contracts_without_application,
            )
            issued = staff_service.issue_key(session, settings, CLI, bank=bank, label="created with the bank")
    except LoanfundError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"bank {bank.code} created with id {bank.id}; its key (shown once):")
    typer.echo(issued.secret)


@bank_key_app.command("issue")
def bank_key_issue(
    code: Annotated[str, typer.Option(help="Bank code")],
    label: Annotated[str | None, typer.Option(help="What the key is for")] = None,
) -> None:
    """Issue another key for a bank (printed alone on the last line)."""
    settings = get_settings()
    with transaction(make_engine(settings)) as session:
        bank = bank_repo.by_code(session, code)
        if bank is None:
            raise _fail(f"no bank with code {code}")
        issued = staff_service.issue_key(session, settings, CLI, bank=bank, label=label)
    typer.echo(f"key {issued.key.id} for bank {code} (shown once):")
    typer.echo(issued.secret)


@bank_key_app.command("revoke")
@staff_key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Option(help="Key id (see GET /api/v1/keys)")]) -> None:
    """Revoke a key."""
    with transaction(make_engine(get_settings())) as session:
        key = session.scalar(select(ApiKey).where(ApiKey.id == key_id))
        if key is None:
            raise _fail(f"no key {key_id}")
        try:
            staff_service.revoke_key(session, CLI, key)
        except LoanfundError as exc:
            raise _fail(exc.message) from exc
    typer.echo(f"key {key_id} revoked")


@staff_app.command("create")
def staff_create(
    name: Annotated[str, typer.Option(help="Name")],
    role: Annotated[Role, typer.Option(help="analyst, officer, approver or admin")],
    login: Annotated[
        str | None, typer.Option(help="Console login name; then set a password with `staff password`")
    ] = None,
) -> None:
    """Create a bureau staff member and print their first key (alone on the last line)."""
    settings = get_settings()
    try:
        with transaction(make_engine(settings)) as session:
            staff = staff_service.create_staff(session, CLI, name=name, role=role, login=login)
            issued = staff_service.issue_key(
                session, settings, CLI, staff=staff, label="created with the staff member"
            )
    except LoanfundError as exc:
        raise _fail(exc.message) from exc
    signs_in = f", console login {staff.login}" if staff.login else ""
    typer.echo(f"staff {name} ({role.value}) created with id {staff.id}{signs_in}; key (shown once):")
    typer.echo(issued.secret)


@staff_app.command("password")
def staff_password(login: Annotated[str, typer.Option(help="Console login name")]) -> None:
    """Set a staff member's console password, read from standard input (first line); ends their sessions.

    Typed at a terminal it is asked for twice without echo; otherwise the first line of the input is the
    password (`loanfund staff password --login wang < file`). Never give it as an argument."""
    import sys

    from loanfund.staff import signin

    settings = get_settings()
    if sys.stdin.isatty():
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        with transaction(make_engine(settings)) as session:
            staff = signin.by_login(session, login)
            if staff is None:
                raise _fail(f"no staff member with login {login}")
            signin.set_password(session, settings, CLI, staff, password)
    except LoanfundError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"password of {staff.login} set; their console sessions have ended")


@staff_key_app.command("issue")
def staff_key_issue(
    staff_id: Annotated[int, typer.Option(help="Staff id")],
    label: Annotated[str | None, typer.Option(help="What the key is for")] = None,
) -> None:
    """Issue another key for a staff member (printed alone on the last line)."""
    settings = get_settings()
    with transaction(make_engine(settings)) as session:
        try:
            staff = staff_service.get_staff(session, staff_id)
        except LoanfundError as exc:
            raise _fail(exc.message) from exc
        issued = staff_service.issue_key(session, settings, CLI, staff=staff, label=label)
    typer.echo(f"key {issued.key.id} for staff {staff_id} (shown once):")
    typer.echo(issued.secret)


@fund_app.command("reconcile")
def fund_reconcile() -> None:
    """Recompute every ledger balance from the entries; exit 1 on any difference."""
    from loanfund.core.money import yuan_text
    from loanfund.fund.ledger import reconcile

    with transaction(make_engine(get_settings())) as session:
        result = reconcile(session)
    typer.echo(
        f"{result.accounts_checked} accounts, {result.transactions_checked} transactions, "
        f"{result.entries_checked} entries; debits {yuan_text(result.total_debits_fen)}, "
        f"credits {yuan_text(result.total_credits_fen)}"
    )

    def _amount(fen: int | None) -> str:
        return "none" if fen is None else yuan_text(fen)

    for d in result.differences:
        typer.echo(
            f"difference {d.code}: stored debits {_amount(d.stored_debits_fen)} "
            f"credits {_amount(d.stored_credits_fen)}, from entries debits "
            f"{yuan_text(d.computed_debits_fen)} credits {yuan_text(d.computed_credits_fen)}",
            err=True,
        )
    for tid in result.unbalanced_transactions:
        typer.echo(f"transaction {tid} does not balance", err=True)
    for code in result.negative_accounts:
        typer.echo(f"account {code} is below zero", err=True)
    if not result.ok:
        raise _fail("the ledger does not reconcile")
    typer.echo("ledger reconciles")


@portfolio_app.command("verify")
def portfolio_verify() -> None:
    """Compare the maintained aggregates with a rebuild from the loans; exit 1 on any difference."""
    from loanfund.portfolio import service as portfolio

    settings = get_settings()
    with transaction(make_engine(settings)) as session:
        maintained = portfolio.snapshot_tables(session)
        portfolio.rebuild(session, loan_rules(settings))
        rebuilt = portfolio.snapshot_tables(session)
        session.rollback()
    diff = {
        name: len(maintained[name] ^ rebuilt[name])
        for name in maintained
        if maintained[name] != rebuilt[name]
    }
    if diff:
        typer.echo(f"aggregates differ from a rebuild (rows that differ per table): {diff}")
        raise typer.Exit(code=1)
    typer.echo("portfolio aggregates agree with the loans")


@portfolio_app.command("rebuild")
def portfolio_rebuild() -> None:
    """Recompute every aggregate from the loans (after a bulk load or a repair)."""
    from loanfund.portfolio import service as portfolio

    settings = get_settings()
    with transaction(make_engine(settings)) as session:
        portfolio.rebuild(session, loan_rules(settings))
    typer.echo("portfolio aggregates rebuilt")


@webhooks_app.command("purge")
def webhooks_purge() -> None:
    """Delete finished webhook deliveries older than LOANFUND_WEBHOOK_RETENTION_DAYS, and the events
    left without deliveries."""
    from loanfund.webhooks.delivery import purge

    settings = get_settings()
    with transaction(make_engine(settings)) as session:
        deliveries, events = purge(session, settings.webhook_retention_days)
    typer.echo(f"{deliveries} finished deliveries and {events} events deleted")


@idempotency_app.command("purge")
def idempotency_purge() -> None:
    """Delete stored responses whose keys have expired."""
    from loanfund.core.idempotency import purge_expired

    with transaction(make_engine(get_settings())) as session:
        count = purge_expired(session)
    typer.echo(f"{count} expired idempotency keys deleted")


@ratings_app.command("compute")
def ratings_compute(
    month: Annotated[str, typer.Option(help="The month to rate, YYYY-MM")],
    recompute: Annotated[
        bool, typer.Option("--recompute", help="Replace the month's stored ratings (audited; needs --reason)")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why the month is rated again")] = None,
) -> None:
    """Rate every partner bank for a month and store the ratings (a month already rated is left as it is
    unless --recompute)."""
    from loanfund.risk import ratings, repository
    from loanfund.risk.schemas import parse_month

    try:
        first = parse_month(month)
    except ValueError as exc:
        raise _fail(f"--month {exc}") from exc
    settings = get_settings()
    try:
        with transaction(make_engine(settings)) as session:
            rows = ratings.compute_month(
                session, settings, CLI, first, recompute=recompute, reason_text=reason
            )
            codes = {b.id: b.code for b in repository.banks(session).values()}
            lines = [
                f"  {codes[r.bank_id]:<12} {r.rating}  score {r.score}  driver {r.driver}"
                for r in sorted(rows, key=lambda r: codes[r.bank_id])
            ]
    except LoanfundError as exc:
        raise _fail(exc.message) from exc
    if not rows:
        typer.echo(f"{month}: no bank had loans covered or compensated; nothing rated")
        return
    typer.echo(f"{month}: {len(rows)} banks rated{' again' if recompute else ''}")
    for line in lines:
        typer.echo(line)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data")] = 2021,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if the database has data")] = False,
    keys_file: Annotated[
        str | None, typer.Option(help="Also write the demo keys to this file (mode 0600)")
    ] = None,
) -> None:
    """Seed demonstration data into an empty database and print the demo keys."""
    from loanfund.demo.seed import DatabaseNotEmpty, seed_demo

    settings = get_settings()
    if settings.env == "prod":
        raise _fail("demo data is refused when LOANFUND_ENV=prod")
    try:
        keys = seed_demo(make_engine(settings), settings, seed=seed)
    except DatabaseNotEmpty as exc:
        if if_empty:
            typer.echo("database already has data; demo seeding skipped")
            return
        raise _fail(str(exc)) from exc
    lines = [f"{who:<28} {key}" for who, key in keys.items()]
    typer.echo("demo data created. Keys (shown once):")
    for line in lines:
        typer.echo(f"  {line}")
    _echo_sign_ins()
    if keys_file:
        import json
        import os

        fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh, indent=2)
        typer.echo(f"keys also written to {keys_file}")


@app.command()
def howto(
    keys_file: Annotated[
        str, typer.Option(help="Demo keys written by `loanfund demo --keys-file`")
    ] = ".demo-keys.json",
    base_url: Annotated[str, typer.Option(help="Where the service listens")] = "http://127.0.0.1:8000",
) -> None:
    """Print how to call the running service, with the demo keys when they are on disk."""
    import json
    from pathlib import Path

    path = Path(keys_file)
    keys: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    officer = next((v for k, v in keys.items() if k.startswith("staff officer")), "<officer key>")
    bank = next((v for k, v in keys.items() if k.startswith("bank ")), "<bank key>")
    typer.echo(f"""
loanfund is starting on {base_url}   (API docs: {base_url}/docs), with the webhook worker beside it
  curl {base_url}/readyz
  curl -H 'Authorization: Bearer {bank}' {base_url}/api/v1/banks/me
  curl -H 'Authorization: Bearer {officer}' '{base_url}/api/v1/enterprises?limit=5'
""")
    typer.echo(f"The bureau console: {base_url}/console/")
    if keys:
        _echo_sign_ins()
        typer.echo(f"Demo keys ({keys_file}):")
        for who, key in keys.items():
            typer.echo(f"  {who:<28} {key}")
    else:
        typer.echo("No demo keys on disk: create some with `loanfund staff create` / `loanfund bank create`.")


def _echo_sign_ins() -> None:
    """The demo staff's console sign-ins (development only: the demo is refused in production)."""
    from loanfund.demo.seed import STAFF
    from loanfund.demo.work import DEMO_LOGINS, DEMO_PASSWORD

    typer.echo(f"Demo console sign-ins (development only), password {DEMO_PASSWORD}:")
    for name, role in STAFF:
        typer.echo(f"  {DEMO_LOGINS[name]:<12} {role.value:<9} {name}")


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value}") from exc


if __name__ == "__main__":
    app()
