"""Partner banks: every change goes through here, checked and audited."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record, snapshot
from loanfund.banks import repository
from loanfund.banks.models import Bank, BankStatus
from loanfund.core.errors import Conflict, NotFound
from loanfund.core.money import to_fen

_SHARE_PLACES = Decimal("0.0001")
_FIELDS = [
    "code",
    "name",
    "fund_share",
    "lending_quota_fen",
    "status",
    "status_reason",
    "allow_contracts_without_application",
]


def create_bank(
    session: Session,
    actor: Actor,
    *,
    code: str,
    name: str,
    fund_share: Decimal,
    lending_quota: Decimal | None = None,
    allow_contracts_without_application: bool = False,
) -> Bank:
    if repository.by_code(session, code) is not None:
        raise Conflict(f"A bank with code {code} already exists", code="bank_code_taken")
    bank = Bank(
        code=code,
        name=name,
        fund_share=fund_share.quantize(_SHARE_PLACES),
        lending_quota_fen=to_fen(lending_quota) if lending_quota is not None else None,
        status=BankStatus.active,
        allow_contracts_without_application=allow_contracts_without_application,
    )
    session.add(bank)
    session.flush()
    record(session, actor, "bank.create", "bank", bank.id, after=snapshot(bank, _FIELDS))
    return bank


def get_bank(session: Session, bank_id: int) -> Bank:
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise NotFound("No such bank", code="bank_not_found")
    return bank


def update_bank(
    session: Session,
    actor: Actor,
    bank: Bank,
    *,
    name: str | None,
    fund_share: Decimal | None,
    lending_quota: Decimal | None,
    clear_lending_quota: bool,
    allow_contracts_without_application: bool | None = None,
) -> Bank:
    before = snapshot(bank, _FIELDS)
    if name is not None:
        bank.name = name
    if fund_share is not None:
        bank.fund_share = fund_share.quantize(_SHARE_PLACES)
    if clear_lending_quota:
        bank.lending_quota_fen = None
    elif lending_quota is not None:
        bank.lending_quota_fen = to_fen(lending_quota)
    if allow_contracts_without_application is not None:
        bank.allow_contracts_without_application = allow_contracts_without_application
    session.flush()
    record(session, actor, "bank.update", "bank", bank.id, before=before, after=snapshot(bank, _FIELDS))
    return bank


def set_status(session: Session, actor: Actor, bank: Bank, status: BankStatus, reason: str) -> Bank:
    if bank.status == status:
        raise Conflict(f"The bank is already {status.value}", code="bank_status_unchanged")
    before = snapshot(bank, _FIELDS)
    bank.status = status
    bank.status_reason = reason
    session.flush()
    action = "bank.suspend" if status == BankStatus.suspended else "bank.reinstate"
    record(
        session, actor, action, "bank", bank.id, before=before, after=snapshot(bank, _FIELDS), reason=reason
    )
    return bank
