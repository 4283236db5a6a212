from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loanfund.core.money import fen_to_yuan, ratio_str, share_of, to_fen, yuan_str, yuan_text


def test_to_fen_and_back() -> None:
    assert to_fen(Decimal("95060000.00")) == 9_506_000_000
    assert to_fen("0.01") == 1
    assert yuan_str(9_506_000_000) == "95060000.00"
    assert yuan_str(-5) == "-0.05"
    assert fen_to_yuan(123) == Decimal("1.23")


def test_more_than_two_places_is_refused() -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        to_fen(Decimal("1.005"))


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_trip(fen: int) -> None:
    assert to_fen(yuan_str(fen)) == fen


def test_share_rounds_half_up_to_the_fen() -> None:
    assert share_of(300_000_000, Decimal("0.80")) == 240_000_000
    assert share_of(1, Decimal("0.5")) == 1
    assert share_of(3, Decimal("0.5")) == 2


def test_ratio() -> None:
    assert ratio_str(1, 3) == "0.3333"
    assert ratio_str(5, 0) is None


def test_messages_state_amounts_in_yuan_with_thousands_separators() -> None:
    assert yuan_text(100_000) == "1,000.00 yuan"
    assert yuan_text(9_506_000_000) == "95,060,000.00 yuan"
    assert yuan_text(5) == "0.05 yuan"
    assert yuan_text(-123_456_789) == "-1,234,567.89 yuan"
