from hypothesis import given
from hypothesis import strategies as st

from loanfund.enterprises.credit_code import (
    ALPHABET,
    check_character,
    checksum_ok,
    is_well_formed,
    with_check_character,
)


def test_published_examples_pass() -> None:
    assert checksum_ok("91350100M000100Y43")
    assert checksum_ok("91110000101623741K")


def test_malformed_codes() -> None:
    assert not is_well_formed("91350100M000100Y4")  # 17 chars
    assert not is_well_formed("9135010OM000100Y43")  # O is not in the alphabet
    assert not is_well_formed("91A50100M000100Y43")  # region code must be digits


body = st.text(alphabet=ALPHABET, min_size=2, max_size=2).flatmap(
    lambda head: st.text(alphabet="0123456789", min_size=6, max_size=6).flatmap(
        lambda region: st.text(alphabet=ALPHABET, min_size=9, max_size=9).map(
            lambda tail: head + region + tail
        )
    )
)


@given(body)
def test_completed_codes_pass(code17: str) -> None:
    assert checksum_ok(with_check_character(code17))


@given(body, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=30))
def test_any_single_substitution_is_caught(code17: str, pos: int, shift: int) -> None:
    code = with_check_character(code17)
    if 2 <= pos <= 7:  # keep the region digits well formed
        new = str((int(code[pos]) + shift % 10 or 1) % 10)
        if new == code[pos]:
            return
    else:
        new = ALPHABET[(ALPHABET.index(code[pos]) + shift) % 31]
    changed = code[:pos] + new + code[pos + 1 :]
    assert not checksum_ok(changed)
    assert check_character(changed[:17]) != code[17]
