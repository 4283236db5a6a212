"""Why an application went no further, in plain words, and what the enterprise can do about it.

English sentences; the portal shows them in the reader's language through its catalogue (they are
message ids), the API returns them beside the codes (`ApplicationStatusRead.explanation`).
"""

from __future__ import annotations

from typing import NamedTuple

from loanfund.applications.models import ApplicationStatus, IneligibleReason


def N_(message: str) -> str:
    """Marks a message id for extraction without translating it here."""
    return message


class Explanation(NamedTuple):
    why: str
    what_to_do: str


INELIGIBLE: dict[IneligibleReason, Explanation] = {
    IneligibleReason.enterprise_not_in_registry: Explanation(
        N_(
            "The credit code is not in the register of technology-based enterprises, so the application "
            "could not be evaluated."
        ),
        N_(
            "Check that the credit code matches the business licence. If it does, register the "
            "enterprise in the municipal technology-based enterprise system (科技型企业入库) first, "
            "then apply again."
        ),
    ),
    IneligibleReason.enterprise_not_registered_tech: Explanation(
        N_(
            "The enterprise is known to the bureau but is not (or no longer) a registered "
            "technology-based enterprise this year."
        ),
        N_(
            "Complete or renew the registration in the municipal technology-based enterprise system, "
            "then apply again. The bureau can tell you what is missing."
        ),
    ),
    IneligibleReason.score_below_threshold: Explanation(
        N_("The knowledge-value score is below the lowest grade (E), so no credit line could be given."),
        N_(
            "Check that every indicator was entered in full (patents, software copyrights, R&D spending "
            "and staff, senior talent, the high-tech certificate). If something was left out, ask the "
            "bureau to review the evaluation; otherwise apply again when the indicators have grown."
        ),
    ),
}

REJECTED = Explanation(
    N_("The bank declined the application. The bank's reason is shown below."),
    N_(
        "You may ask the bank about its reason, or apply again and choose another partner bank; a new "
        "application is evaluated afresh."
    ),
)


def explain(status: ApplicationStatus, reason: IneligibleReason | None) -> Explanation | None:
    if status == ApplicationStatus.ineligible and reason is not None:
        return INELIGIBLE[reason]
    if status == ApplicationStatus.rejected:
        return REJECTED
    return None
