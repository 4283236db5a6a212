"""Money: integer fen in the database and in Python, decimal strings in yuan with two places in the API.

Nothing here or anywhere else touches a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

FEN_PER_YUAN = 100
_CENT = Decimal("0.01")
MAX_YUAN = Decimal("9999999999999.99")  # fits BIGINT fen with room for sums

# Input amount in yuan: a JSON number or a decimal string with at most two places.
Yuan = Annotated[
    Decimal, Field(max_digits=15, decimal_places=2, allow_inf_nan=False, examples=["1000000.00"])
]
PositiveYuan = Annotated[
    Decimal, Field(gt=0, max_digits=15, decimal_places=2, allow_inf_nan=False, examples=["1000000.00"])
]
NonNegativeYuan = Annotated[
    Decimal, Field(ge=0, max_digits=15, decimal_places=2, allow_inf_nan=False, examples=["0.00"])
]

# Output amount: always a string with exactly two places.
YuanStr = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["95060000.00"])]


def to_fen(yuan: Decimal | int | str) -> int:
    d = Decimal(yuan)
    q = d.quantize(_CENT)
    if q != d:
        raise ValueError(f"amount {yuan} has more than two decimal places")
    return int(q * FEN_PER_YUAN)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(_CENT)


def yuan_str(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(int(fen)), FEN_PER_YUAN)
    return f"{sign}{q}.{r:02d}"


def yuan_text(fen: int) -> str:
    """An amount for a person to read in a message: `1,000.00 yuan` (never fen)."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(int(fen)), FEN_PER_YUAN)
    return f"{sign}{q:,}.{r:02d} yuan"


def share_of(fen: int, share: Decimal) -> int:
    """`share` × `fen`, rounded half-up to the fen."""
    return int((Decimal(fen) * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ratio_str(numerator: int | Decimal, denominator: int | Decimal, places: int = 4) -> str | None:
    """A ratio as a decimal string, or None when the denominator is zero."""
    if not denominator:
        return None
    q = Decimal(1).scaleb(-places)
    return str((Decimal(numerator) / Decimal(denominator)).quantize(q, rounding=ROUND_HALF_UP))


Ratio = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str)]
