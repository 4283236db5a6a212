from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loanfund.staff.models import ApiKey, Role, Staff
from loanfund.staff.signin import LOGIN_PATTERN


class StaffCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "王审核", "role": "approver"}]}
    )

    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role
    login: Annotated[
        str | None,
        Field(
            pattern=LOGIN_PATTERN,
            description="Console login name (lower case); the password is set with `loanfund staff password`",
        ),
    ] = None


class StaffRead(BaseModel):
    id: int
    name: str
    role: Role
    active: bool
    login: str | None
    totp_enrolled: bool = Field(description="A one-time code is enrolled for console sign-in")
    created_at: datetime

    @classmethod
    def of(cls, s: Staff) -> StaffRead:
        return cls(
            id=s.id,
            name=s.name,
            role=s.role,
            active=s.active,
            login=s.login,
            totp_enrolled=s.totp_enabled_at is not None,
            created_at=s.created_at,
        )


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"label": "reporting workstation, room 302"}]}
    )

    label: Annotated[str, Field(max_length=200)] | None = None


class KeyRead(BaseModel):
    id: int
    prefix: str = Field(description="The first characters of the key, to tell keys apart")
    bank_id: int | None
    staff_id: int | None
    label: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, k: ApiKey) -> KeyRead:
        return cls(
            id=k.id,
            prefix=k.prefix,
            bank_id=k.bank_id,
            staff_id=k.staff_id,
            label=k.label,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )


class IssuedKeyRead(KeyRead):
    key: str = Field(description="The key itself. Shown once: store it now, it cannot be read again.")
