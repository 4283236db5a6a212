"""The one mapping from API error codes (and form validation errors) to sentences a person reads.

Sentences are English message ids, translated through the catalogues like every other text of the
pages. A page shows `sentence(error, gettext)` at the top and `field_errors(...)` beside each field; a
code missing here still reads as a sentence (`unknown`), with the server's own message after it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from loanfund.core.errors import LoanfundError

Gettext = Callable[[str], str]


def N_(message: str) -> str:
    """Marks a message id for extraction without translating it here."""
    return message


# code → sentence; `{…}` placeholders are filled from the error's details when present
ERRORS: dict[str, str] = {
    # requests and the service
    "validation_error": N_("Some of the answers need correcting; see the fields marked below."),
    "invalid_value": N_("A value cannot be stored; check the numbers and dates you entered."),
    "payload_too_large": N_("What you sent is too large."),
    "rate_limited": N_(
        "Too many requests from your network. Please wait {retry_after_s} seconds and try again."
    ),
    "database_unavailable": N_("The service is briefly unavailable. Please try again in a few minutes."),
    "database_busy": N_("The service is busy. Please try again in a moment."),
    "service_unavailable": N_("The service is briefly unavailable. Please try again in a few minutes."),
    "internal_error": N_("Something went wrong on our side. Please try again later."),
    "not_found": N_("This page does not exist."),
    "method_not_allowed": N_("This page cannot be used that way."),
    "conflict": N_("The change conflicts with an existing record."),
    "unauthorized": N_("Please sign in first."),
    "forbidden": N_("You may not do this."),
    "role_required": N_("Your role may not do this."),
    "bureau_only": N_("This is for bureau staff only."),
    "bank_only": N_("This is for partner banks only."),
    "csrf_failed": N_(
        "The form has expired or did not come from this site. Reload the page and submit it again."
    ),
    "idempotency_key_reused": N_(
        "This form was already used for a different application. Reload the page to start a new one."
    ),
    "idempotency_request_in_progress": N_(
        "Your application is still being processed. Wait a moment and reload this page."
    ),
    # applications
    "application_not_found": N_("No application matches this number and token."),
    "status_token_required": N_("Enter the status token you were given when you applied."),
    "term_too_long": N_("The term may be at most {max_term_months} months."),
    "bank_unknown": N_("Choose one of the partner banks in the list."),
    "bank_suspended": N_("This bank is not taking applications at the moment; choose another."),
    "application_state_invalid": N_("The application is not in a state that allows this."),
    "amount_exceeds_credit_line": N_("The amount exceeds the credit line."),
    "rate_above_cap": N_("The rate exceeds the cap."),
    # enterprises
    "credit_code_checksum_failed": N_(
        "The last character of the credit code does not match the others; "
        "check the code on the business licence."
    ),
    "enterprise_not_found": N_("The enterprise is not in the registry."),
    "unknown": N_("The request could not be completed."),
}


def add_errors(more: Mapping[str, str]) -> None:
    """An audience's own codes (marked with `N_` in its package, translated in its catalogue)."""
    ERRORS.update(more)


# form validation (pydantic error types), per field where the field has its own rule
_CREDIT_CODE_FORMAT = N_(
    "A unified social credit code has 18 characters: digits and capital letters other than I, O, S, V and Z."
)
_FIELD_RULES: Mapping[tuple[str, str], str] = {
    ("credit_code", "string_pattern_mismatch"): _CREDIT_CODE_FORMAT,
    ("credit_code", "string_too_short"): _CREDIT_CODE_FORMAT,
    ("credit_code", "string_too_long"): _CREDIT_CODE_FORMAT,
    ("credit_code", "credit_code_malformed"): _CREDIT_CODE_FORMAT,
    ("contact_phone", "string_pattern_mismatch"): N_(
        "Enter a phone number of digits, for example 13800138000."
    ),
    ("contact_email", "string_pattern_mismatch"): N_(
        "Enter an e-mail address such as name@example.cn, or leave it empty."
    ),
    ("rd_staff", "value_error"): N_("R&D staff cannot be more than all staff."),
}
_TYPES: Mapping[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This is too short."),
    "string_too_long": N_("This is too long."),
    "string_pattern_mismatch": N_("This is not in the expected format."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "decimal_parsing": N_("Enter an amount in yuan, such as 800000 or 800000.00."),
    "decimal_max_places": N_("Enter an amount with at most two decimal places."),
    "decimal_max_digits": N_("This amount is too large."),
    "decimal_whole_digits": N_("This amount is too large."),
    "greater_than": N_("Enter a number greater than {gt}."),
    "greater_than_equal": N_("Enter a number of at least {ge}."),
    "less_than_equal": N_("Enter a number of at most {le}."),
    "bool_parsing": N_("Choose yes or no."),
    "literal_error": N_("Choose one of the options."),
    "value_error": N_("This value is not accepted."),
}


def _fill(template: str, params: Mapping[str, Any]) -> str:
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template.split("{")[0].rstrip() or template


def sentence(code: str, gettext: Gettext, params: Mapping[str, Any] | None = None) -> str:
    """The sentence for an error code, in the reader's language."""
    return _fill(gettext(ERRORS.get(code, ERRORS["unknown"])), params or {})


def error_sentence(exc: LoanfundError, gettext: Gettext, **params: Any) -> str:
    details = exc.details if isinstance(exc.details, Mapping) else {}
    text = sentence(exc.code, gettext, {**details, **params})
    if exc.code not in ERRORS:
        text = f"{text} ({exc.message})"
    return text


def field_errors(
    exc: LoanfundError, gettext: Gettext, field_names: Callable[[str], str] = lambda f: f, **params: Any
) -> dict[str, str]:
    """Field name → sentence, for an error whose details name fields (`[{"field", "message"}, …]`).
    An unmapped code is shown with the server's own message, beside its field."""
    out: dict[str, str] = {}
    if not isinstance(exc.details, list):
        return out
    for d in exc.details:
        if not isinstance(d, Mapping) or not d.get("field"):
            continue
        name = field_names(str(d["field"]))
        if exc.code in ERRORS and exc.code != "validation_error":
            out[name] = sentence(exc.code, gettext, {**d, **params})
        else:
            out[name] = f"{sentence('unknown', gettext)} ({d.get('message') or exc.message})"
    return out


def validation_errors(
    err: ValidationError, gettext: Gettext, field_names: Callable[[tuple[Any, ...]], str]
) -> dict[str, str]:
    """Field name → sentence for a pydantic validation error (first error per field)."""
    out: dict[str, str] = {}
    for e in err.errors():
        name = field_names(tuple(e.get("loc", ())))
        if name in out:
            continue
        kind = e.get("type", "value_error")
        template = _FIELD_RULES.get((name, kind)) or _TYPES.get(kind) or _TYPES["value_error"]
        out[name] = _fill(gettext(template), {k: v for k, v in (e.get("ctx") or {}).items()})
    return out
