"""Dates and timestamps in requests: ISO 8601 text only, within 1900–2199.

Pydantic's lax mode also reads a number as a Unix time (`?applied_from=0` would be 1970-01-01) and a
date-time at midnight as a date. The OpenAPI document promises `format: date` / `format: date-time`
strings, and a bank sending a timestamp by mistake should be told, not silently moved to 1970; so every
date or timestamp a client sends — in a body, a query or a path — uses these types.

The range keeps date arithmetic safe: a term added to a start date, days past due (up to 100 years)
taken from a report date, a timestamp with an offset converted to UTC — none may leave Python's years
1–9999 (year 0001 with an offset of +02:00 is not a UTC time at all). No record of this programme lies
anywhere near either end.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:?[0-9]{2})"
)


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATETIME.fullmatch(value):
        return value
    raise ValueError("must be a timestamp written YYYY-MM-DDTHH:MM:SS with a UTC offset, e.g. Z")


def _date_in_range(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must lie between {EARLIEST} and {LATEST}")
    return value


def _datetime_in_range(value: datetime) -> datetime:
    try:
        day = value.astimezone(UTC).date()
    except OverflowError:
        day = date.min
    _date_in_range(day)
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_date_in_range)]
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime), AfterValidator(_datetime_in_range)]
