"""Errors the fund raises; each has its own code so that clients (and the claims work) can tell them apart."""

from __future__ import annotations

from loanfund.core.errors import Conflict, InvalidInput, NotFound


class FundInsufficient(Conflict):
    """The fund's cash cannot cover the movement (available < amount, or cash would go below zero)."""

    code = "fund_insufficient"


class NegativeBalance(Conflict):
    """A no-negative account other than the fund's cash would go below zero."""

    code = "negative_balance"


class ReservationExceeded(Conflict):
    """Releasing or paying more than is reserved for the reference."""

    code = "reservation_exceeded"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class CannotReverseReversal(Conflict):
    code = "cannot_reverse_reversal"


class ReversalNotAllowed(Conflict):
    """The transaction belongs to a workflow (a claim, a recovery) that must reverse it itself."""

    code = "reversal_not_allowed"


class DuplicateBudgetDocument(Conflict):
    code = "budget_doc_duplicate"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"


class UnbalancedTransaction(InvalidInput):
    code = "ledger_unbalanced"


class InvalidPosting(InvalidInput):
    """Zero or negative amount, unknown account, missing reference — a programming error in the caller."""

    code = "ledger_invalid_posting"
