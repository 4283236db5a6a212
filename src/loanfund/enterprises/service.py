"""The enterprise registry: creation (with the credit-code checksum rule), updates and CSV import."""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from loanfund.audit.service import Actor, record, snapshot
from loanfund.core.errors import Conflict, InvalidInput, NotFound, field_error
from loanfund.enterprises import repository
from loanfund.enterprises.credit_code import checksum_ok, region_of
from loanfund.enterprises.models import Enterprise
from loanfund.enterprises.schemas import EnterpriseCreate, EnterpriseUpdate

_FIELDS = [
    "credit_code",
    "name",
    "region_code",
    "industry",
    "tech_reg_no",
    "tech_reg_date",
    "high_tech_cert_no",
    "high_tech_cert_expiry",
    "headcount",
    "grade",
    "checksum_override",
    "checksum_override_reason",
]
CSV_COLUMNS = [f for f in _FIELDS if f != "checksum_override"]


def checksum_error(code: str) -> InvalidInput:
    return field_error(
        "credit_code_checksum_failed",
        f"credit_code {code} fails its check character; "
        "an officer may accept it with checksum_override_reason",
        "credit_code",
    )


def _build(data: EnterpriseCreate) -> Enterprise:
    override = not checksum_ok(data.credit_code)
    if override and not data.checksum_override_reason:
        raise checksum_error(data.credit_code)
    return Enterprise(
        credit_code=data.credit_code,
        name=data.name,
        region_code=data.region_code or region_of(data.credit_code),
        industry=data.industry,
        tech_reg_no=data.tech_reg_no,
        tech_reg_date=data.tech_reg_date,
        high_tech_cert_no=data.high_tech_cert_no,
        high_tech_cert_expiry=data.high_tech_cert_expiry,
        headcount=data.headcount,
        grade=data.grade,
        checksum_override=override,
        checksum_override_reason=data.checksum_override_reason if override else None,
    )


def create_enterprise(session: Session, actor: Actor, data: EnterpriseCreate) -> Enterprise:
    if repository.by_code(session, data.credit_code) is not None:
        raise Conflict(f"Enterprise {data.credit_code} is already registered", code="enterprise_exists")
    ent = _build(data)
    session.add(ent)
    session.flush()
    _audit_create(session, actor, ent)
    return ent


def _audit_create(session: Session, actor: Actor, ent: Enterprise) -> None:
    record(session, actor, "enterprise.create", "enterprise", ent.credit_code, after=snapshot(ent, _FIELDS))
    if ent.checksum_override:
        record(
            session,
            actor,
            "enterprise.checksum_override",
            "enterprise",
            ent.credit_code,
            reason=ent.checksum_override_reason,
        )


def get_enterprise(session: Session, credit_code: str) -> Enterprise:
    ent = repository.by_code(session, credit_code)
    if ent is None:
        raise NotFound(f"No enterprise {credit_code} in the registry", code="enterprise_not_found")
    return ent


def update_enterprise(session: Session, actor: Actor, ent: Enterprise, data: EnterpriseUpdate) -> Enterprise:
    before = snapshot(ent, _FIELDS)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field in ("name", "industry"):
            raise field_error("field_required", f"{field} cannot be cleared", field)
        setattr(ent, field, value)
    if (ent.high_tech_cert_no is None) != (ent.high_tech_cert_expiry is None):
        raise field_error(
            "high_tech_cert_incomplete",
            "high_tech_cert_no and high_tech_cert_expiry go together: set both or neither",
            "high_tech_cert_expiry",
        )
    session.flush()
    record(
        session,
        actor,
        "enterprise.update",
        "enterprise",
        ent.credit_code,
        before=before,
        after=snapshot(ent, _FIELDS),
    )
    return ent


def set_grade(session: Session, actor: Actor, ent: Enterprise, grade: str, why: str) -> None:
    """Record the enterprise's knowledge-value grade (an application's evaluation or re-grade)."""
    if ent.grade == grade:
        return
    before = {"grade": ent.grade}
    ent.grade = grade
    session.flush()
    record(
        session,
        actor,
        "enterprise.grade",
        "enterprise",
        ent.credit_code,
        before=before,
        after={"grade": grade},
        reason=why,
    )


def import_csv(session: Session, actor: Actor, text: str) -> int:
    """Import every row or none: each bad row is reported by its line number (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _import_rows(session, actor, reader)
    except csv.Error as exc:  # not CSV at all: a NUL byte, a field over the size limit, a stray quote
        raise InvalidInput(
            f"The CSV cannot be read: {exc}",
            code="csv_malformed",
            details=[{"line": reader.line_num or 1, "field": None, "message": str(exc)}],
        ) from exc


def _import_rows(session: Session, actor: Actor, reader: csv.DictReader[str]) -> int:
    header = reader.fieldnames or []
    missing = [c for c in ("credit_code", "name", "industry") if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        raise InvalidInput(
            "The CSV header is wrong",
            code="csv_header_invalid",
            details={"missing": missing, "unknown": unknown, "allowed": CSV_COLUMNS},
        )
    errors: list[dict[str, Any]] = []
    parsed: list[tuple[int, EnterpriseCreate]] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append({"line": line, "field": None, "message": "more values than columns"})
            continue
        values = {k: (v.strip() if v and v.strip() else None) for k, v in row.items()}
        try:
            item = EnterpriseCreate.model_validate(values, strict=False)  # CSV cells are text
        except ValidationError as exc:
            for e in exc.errors():
                field = ".".join(str(p) for p in e["loc"]) or None
                errors.append({"line": line, "field": field, "message": e["msg"]})
            continue
        if not checksum_ok(item.credit_code) and not item.checksum_override_reason:
            errors.append({"line": line, "field": "credit_code", "message": "check character does not match"})
            continue
        if item.credit_code in seen:
            errors.append(
                {
                    "line": line,
                    "field": "credit_code",
                    "message": f"duplicate of line {seen[item.credit_code]}",
                }
            )
            continue
        seen[item.credit_code] = line
        parsed.append((line, item))
    if not parsed and not errors:
        raise InvalidInput("The CSV has no rows", code="csv_empty")
    for code in repository.existing_codes(session, list(seen)):
        errors.append({"line": seen[code], "field": "credit_code", "message": "already registered"})
    if errors:
        errors.sort(key=lambda e: e["line"])
        raise InvalidInput(
            f"{len(errors)} problem(s) in the CSV; nothing was imported",
            code="csv_rows_invalid",
            details=errors,
        )
    ents = [_build(item) for _, item in parsed]
    session.add_all(ents)
    session.flush()
    for ent in ents:
        _audit_create(session, actor, ent)
    record(session, actor, "enterprise.import", "enterprise", "*", after={"rows": len(parsed)})
    return len(parsed)
