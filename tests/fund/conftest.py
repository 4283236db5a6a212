from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from loanfund.banks import service as bank_service
from tests.factories import TEST_ACTOR

_codes = itertools.count(1)


def make_bank(session: Session) -> int:
    bank = bank_service.create_bank(
        session,
        TEST_ACTOR,
        code=f"FUND_{next(_codes)}",
        name="Fund test bank",
        fund_share=Decimal("0.80"),
        allow_contracts_without_application=True,
    )
    return bank.id


@pytest.fixture
def bank_id(session: Session) -> int:
    return make_bank(session)
