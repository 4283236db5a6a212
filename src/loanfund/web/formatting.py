"""How amounts and dates are shown on pages: `12,345,678.90` (元), `1,234.57` (万元), `2021-06-30`.

Amounts arrive as integer fen, `Decimal` or the API's decimal strings; nothing goes through a float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

_CENT = Decimal("0.01")
_WAN = Decimal(10_000)


def _yuan(value: int | Decimal | str | None, *, fen: bool) -> Decimal | None:
    if value is None or value == "":
        return None
    if fen:
        return Decimal(int(value)) / 100
    return Decimal(value)


def money(value: int | Decimal | str | None, *, fen: bool = False) -> str:
    """`12345678.9` → `12,345,678.90`; `fen=True` reads an integer number of fen. None → `—`."""
    d = _yuan(value, fen=fen)
    if d is None:
        return "—"
    return f"{d.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


def wan(value: int | Decimal | str | None, *, fen: bool = False, places: int = 2) -> str:
    """The amount in 万元 (ten thousands of yuan): `95060000` → `9,506.00`."""
    d = _yuan(value, fen=fen)
    if d is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{(d / _WAN).quantize(q, rounding=ROUND_HALF_UP):,.{places}f}"


def iso_date(value: date | datetime | str | None, tz: str = "Asia/Shanghai") -> str:
    """`YYYY-MM-DD`; a timestamp is shown as its date in the business time zone."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(tz))
        return value.date().isoformat()
    return value.isoformat()


def percent(value: Decimal | str | None, places: int = 2) -> str:
    if value is None or value == "":
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{Decimal(value).quantize(q, rounding=ROUND_HALF_UP)}%"


def ratio_percent(value: Decimal | str | None, places: int = 2) -> str:
    """A ratio as a percentage: `0.0512` → `5.12%`. None → `—`."""
    if value is None or value == "":
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{(Decimal(value) * 100).quantize(q, rounding=ROUND_HALF_UP)}%"
