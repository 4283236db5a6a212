"""Unified social credit code (统一社会信用代码, GB 32100-2015)."""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # W_i = 3^(i-1) mod 31, i = 1..17
FORMAT = re.compile(rf"^[{ALPHABET}]{{2}}[0-9]{{6}}[{ALPHABET}]{{10}}$")


def is_well_formed(code: str) -> bool:
    """18 characters from the alphabet, with the region code (positions 3–8) in digits."""
    return bool(FORMAT.match(code))


def check_character(code17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(code17, _WEIGHTS, strict=True))
    value = 31 - total % 31
    return ALPHABET[0 if value == 31 else value]


def checksum_ok(code: str) -> bool:
    return is_well_formed(code) and check_character(code[:17]) == code[17]


def region_of(code: str) -> str:
    return code[2:8]


def with_check_character(code17: str) -> str:
    """Complete a 17-character body with its check character (used to make demo data)."""
    return code17 + check_character(code17)
