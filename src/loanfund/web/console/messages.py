"""The console's error codes as sentences (added to the kit's one mapping, translated in console.po)."""

from __future__ import annotations

from loanfund.web.messages import N_, add_errors

ERRORS = {
    "signin_failed": N_("The login or the password is wrong."),
    "signin_throttled": N_("Too many failed sign-ins. Please wait {retry_after_s} seconds and try again."),
    "otp_invalid": N_("The one-time code is wrong or was already used; enter the next code."),
    "totp_enrolled": N_("A one-time code is already enrolled; an admin can reset it."),
    "totp_not_enrolled": N_("No one-time code is enrolled."),
    "totp_not_started": N_("Start the enrolment first."),
    "password_too_short": N_("The password must be at least {min_length} characters long."),
    "password_mismatch": N_("The two new passwords differ."),
    "password_wrong": N_("The current password is wrong."),
    "login_invalid": N_("A login is 3–64 characters: lower-case letters, digits, '.', '_' or '-'."),
    "login_taken": N_("This login is taken."),
    "login_missing": N_("Give the staff member a login first."),
    "maker_checker": N_("You reviewed this claim; another approver must confirm the payout."),
    "claim_state_invalid": N_("The claim is no longer in a state that allows this; reload the page."),
    "claim_not_found": N_("No such claim."),
    "claim_amount_exceeds_share": N_("At most the fund's share of the principal can be approved."),
    "reduction_reason_required": N_("A reduced approval needs a reason."),
    "fund_insufficient": N_("The fund's available balance cannot cover this payout."),
    "breaker_not_suspended": N_("The bank is not suspended."),
    "bank_not_found": N_("No such bank."),
    "bank_status_unchanged": N_("The bank already has this status."),
    "loan_not_found": N_("No such loan."),
    "staff_not_found": N_("No such staff member."),
    "staff_status_unchanged": N_("Nothing to change."),
    "key_already_revoked": N_("The key is already revoked."),
    "key_not_found": N_("No such key."),
    "override_empty": N_("Change at least one indicator."),
    "csv_empty": N_("The file is empty."),
    "csv_encoding": N_("The file is not UTF-8 text."),
    "csv_header_invalid": N_("The first line of the file must name the columns."),
    "csv_malformed": N_("The file is not a well-formed CSV."),
    "csv_rows_invalid": N_("Some lines of the file are not valid; nothing was imported."),
    "report_too_large": N_("The report is too long to show; narrow the filters or download the CSV."),
    "role_required": N_("Your role may not do this."),
    "reason_required": N_("Give a reason of at least 3 characters; it is kept in the audit log."),
    "early_default_review_required": N_(
        "The loan became non-performing within the early-default window after its first disbursement: "
        "write your review note before approving."
    ),
    "breaker_not_stopped": N_("New coverage is not stopped programme-wide; there is nothing to lift."),
    "month_not_closed": N_("The bank has not reported this month yet, so it is not closed."),
    "month_already_reopened": N_("This month of the bank is already reopened."),
    "not_month_end": N_("Choose the last day of a month."),
    "month_not_over": N_("This month is not over yet."),
    "grade_invalid": N_("Choose a grade from A to E."),
    "form_key_missing": N_("The form has expired; reload the page and try again."),
    "date_invalid": N_("Enter the date as YYYY-MM-DD."),
    "as_of_in_future": N_("The date is in the future: a stress test starts from the book as it stands."),
}
add_errors(ERRORS)
