from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from loanfund.core import bulk
from loanfund.enterprises.models import ENTERPRISES, Enterprise


def by_code(session: Session, credit_code: str) -> Enterprise | None:
    return session.scalar(select(Enterprise).where(Enterprise.credit_code == credit_code))


@dataclass(frozen=True, slots=True)
class EnterpriseRef:
    """What a loan contract needs of an enterprise, read without an ORM object (a batch reads
    thousands): its id, industry, registration and grade on record."""

    id: int
    credit_code: str
    industry: str
    tech_reg_no: str | None
    grade: str | None

    @property
    def is_registered_tech(self) -> bool:
        return self.tech_reg_no is not None


def by_codes(session: Session, credit_codes: Iterable[str]) -> dict[str, EnterpriseRef]:
    """Many enterprises by credit code, with what a loan contract needs of them."""
    t = ENTERPRISES
    stmt = select(t.c.id, t.c.credit_code, t.c.industry, t.c.tech_reg_no, t.c.grade).where(
        bulk.one_of(session, t, "credit_code", credit_codes)
    )
    return {row[1]: EnterpriseRef(*row) for row in session.execute(stmt).all()}


def existing_codes(session: Session, codes: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(codes), 500):
        chunk = codes[i : i + 500]
        found.update(session.scalars(select(Enterprise.credit_code).where(Enterprise.credit_code.in_(chunk))))
    return found


def search(
    session: Session,
    *,
    industry: str | None,
    region_code: str | None,
    registered: bool | None,
    high_tech: bool | None,
    name_contains: str | None,
    after_id: int | None,
    limit: int,
) -> list[Enterprise]:
    stmt = select(Enterprise).order_by(Enterprise.id).limit(limit)
    if industry:
        stmt = stmt.where(Enterprise.industry == industry)
    if region_code:
        stmt = stmt.where(Enterprise.region_code == region_code)
    if registered is not None:
        cond = Enterprise.tech_reg_no.is_not(None)
        stmt = stmt.where(cond if registered else ~cond)
    if high_tech is not None:
        cond = Enterprise.high_tech_cert_no.is_not(None)
        stmt = stmt.where(cond if high_tech else ~cond)
    if name_contains:
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Enterprise.name.like(f"%{escaped}%", escape="\\"))
    if after_id is not None:
        stmt = stmt.where(Enterprise.id > after_id)
    return list(session.scalars(stmt))
