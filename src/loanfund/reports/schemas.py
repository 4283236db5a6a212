"""JSON answers of the oversight reports. Amounts are decimal strings in yuan with two places; ratios are
decimal strings with four places, or null when their denominator is zero. CSV and Excel carry the same
figures (see `sheets.py`)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field

from loanfund.core.money import YuanStr, yuan_str
from loanfund.reports import service
from loanfund.reports.service import Figures

RatioStr = Annotated[str, Field(pattern=r"^-?\d+\.\d{4}$", examples=["0.0123"])]


def _yuan(fen: int | None) -> str | None:
    return None if fen is None else yuan_str(fen)


def _ratio(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


class BankRef(BaseModel):
    id: int
    code: str
    name: str


def _bank_ref(scope: service.Scope) -> BankRef | None:
    b = scope.bank
    return None if b is None else BankRef(id=b.id, code=b.code, name=b.name)


_BANK = "The bank the report is restricted to (a bank's own key, or `bank_id`); null = the whole programme"


class _Report(BaseModel):
    generated_at: datetime
    bank: BankRef | None = Field(description=_BANK)


class _Yearly(_Report):
    year: int
    period_start: date
    period_end: date = Field(description="31 December: stocks and fund figures are at the end of this day")


def _yearly(year: int, scope: service.Scope, generated_at: datetime) -> dict[str, Any]:
    start, end = service.year_bounds(year)
    return {
        "year": year,
        "period_start": start,
        "period_end": end,
        "bank": _bank_ref(scope),
        "generated_at": generated_at,
    }


# --- summary ---------------------------------------------------------------------------------------


class ContributionLine(BaseModel):
    source: str = Field(description="city | district")
    in_year: YuanStr
    cumulative: YuanStr = Field(description="Contributed up to the end of the year, net of reversals")


def _fund(s: service.Summary, fen: int) -> str | None:
    return yuan_str(fen) if s.scope.shows_fund else None


class SummaryRead(_Yearly):
    """The programme (or one bank's part of it) in a calendar year and cumulative to its end.

    For a bank's key the fund's own position — fund_size, fund_contributed_in_year, fund_balance,
    reserved_balance, available_balance, leverage, coverage_ratio — is null and `contributions` empty."""

    loans_disbursed_count: int = Field(
        description="Loans whose first disbursement fell in the year (a loan counts once, in its first year)"
    )
    loans_disbursed_amount: YuanStr = Field(
        description="Every disbursement dated in the year, first or later tranche"
    )
    cumulative_loans_count: int = Field(description="Loans first disbursed up to the end of the year")
    cumulative_disbursed_amount: YuanStr = Field(description="Every disbursement up to the end of the year")
    average_loan_amount: YuanStr | None = Field(
        description="loans_disbursed_amount ÷ loans_disbursed_count, half-up to the fen; null without loans"
    )
    principal_repaid_amount: YuanStr = Field(description="Principal repaid in the year")
    interest_repaid_amount: YuanStr = Field(description="Interest paid in the year (to the banks)")
    enterprises_served: int = Field(description="Distinct enterprises with a disbursement in the year")
    first_time_borrowers: int = Field(
        description="Enterprises whose first disbursement ever (from the bank, for a bank) fell in the year"
    )
    cumulative_enterprises_served: int = Field(
        description="Distinct enterprises with a disbursement up to the end of the year"
    )
    outstanding_principal: YuanStr = Field(
        description="Covered outstanding principal at year end: loans active, overdue or non-performing"
    )
    overdue_principal: YuanStr = Field(description="Outstanding principal of overdue loans at year end")
    npl_principal: YuanStr = Field(description="Outstanding principal of non-performing loans at year end")
    compensated_principal: YuanStr = Field(
        description="Outstanding principal of compensated loans not yet written off, at year end"
    )
    fund_size: YuanStr | None = Field(
        description="Contributions (city + district) up to the end of the year, net of reversals"
    )
    fund_contributed_in_year: YuanStr | None = Field(description="Contributions with value dates in the year")
    contributions: list[ContributionLine] = Field(description="Contributions by source (empty for a bank)")
    fund_balance: YuanStr | None = Field(description="The fund's cash at year end: available plus reserved")
    reserved_balance: YuanStr | None = Field(
        description="Cash reserved for approved, unpaid claims at year end"
    )
    available_balance: YuanStr | None = Field(description="fund_balance − reserved_balance")
    compensation_paid_in_year: YuanStr = Field(
        description="Compensation paid (net of reversals) with value dates in the year; a bank: to it"
    )
    compensation_paid_cumulative: YuanStr
    recoveries_recognised_in_year: YuanStr = Field(
        description="The fund's share of recoveries the banks reported in the year"
    )
    recoveries_recognised_cumulative: YuanStr
    recoveries_received_in_year: YuanStr = Field(
        description="Recoveries the banks remitted to the fund in the year"
    )
    recoveries_received_cumulative: YuanStr
    max_liability: YuanStr = Field(
        description="Σ per bank of covered outstanding × the bank's fund share (each half-up to the fen)"
    )
    npl_ratio: RatioStr | None = Field(
        description="(non-performing + compensated-not-written-off) ÷ (covered + compensated-not-written-off)"
        " at year end — the circuit breaker's ratio"
    )
    leverage: RatioStr | None = Field(
        description="Covered outstanding ÷ fund balance at year end (with `bank_id`: that bank's covered "
        "loans); null for a bank's key"
    )
    coverage_ratio: RatioStr | None = Field(
        description="Fund balance ÷ max_liability at year end; null for a bank's key"
    )

    @classmethod
    def of(cls, s: service.Summary) -> SummaryRead:
        f, b = s.figures, s.scope.bank_id
        return cls(
            **_yearly(s.year, s.scope, s.generated_at),
            loans_disbursed_count=f.loans_started,
            loans_disbursed_amount=yuan_str(f.disbursed_fen),
            cumulative_loans_count=f.cumulative_loans,
            cumulative_disbursed_amount=yuan_str(f.cumulative_disbursed_fen),
            average_loan_amount=_yuan(s.average_loan_fen),
            principal_repaid_amount=yuan_str(f.principal_repaid_fen),
            interest_repaid_amount=yuan_str(f.interest_repaid_fen),
            enterprises_served=s.enterprises_served,
            first_time_borrowers=s.first_time_borrowers,
            cumulative_enterprises_served=s.cumulative_enterprises_served,
            outstanding_principal=yuan_str(f.covered_fen),
            overdue_principal=yuan_str(f.overdue_fen),
            npl_principal=yuan_str(f.npl_fen),
            compensated_principal=yuan_str(f.compensated_fen),
            fund_size=_fund(s, s.after.fund_size_fen),
            fund_contributed_in_year=_fund(s, s.fund_contributed_in_year_fen),
            contributions=[
                ContributionLine(
                    source=src,
                    in_year=yuan_str(s.contributions_in_year(src)),
                    cumulative=yuan_str(s.after.contributions_fen[src]),
                )
                for src in service.SOURCES
                if s.scope.shows_fund
            ],
            fund_balance=_fund(s, s.after.balance_fen),
            reserved_balance=_fund(s, s.after.reserved_fen),
            available_balance=_fund(s, s.after.cash_available_fen),
            compensation_paid_in_year=yuan_str(s.compensation_paid_in_year_fen),
            compensation_paid_cumulative=yuan_str(s.after.comp_paid_fen(b)),
            recoveries_recognised_in_year=yuan_str(s.recoveries_recognised_in_year_fen),
            recoveries_recognised_cumulative=yuan_str(s.after.recoveries_recognised_fen(b)),
            recoveries_received_in_year=yuan_str(s.recoveries_received_in_year_fen),
            recoveries_received_cumulative=yuan_str(s.after.recoveries_received_fen(b)),
            max_liability=yuan_str(s.max_liability_fen),
            npl_ratio=_ratio(s.npl_ratio),
            leverage=_ratio(s.leverage),
            coverage_ratio=_ratio(s.coverage_ratio),
        )


# --- breakdowns ----------------------------------------------------------------------------------


class FiguresRead(BaseModel):
    """One line of a breakdown (or its totals): flows in the year, stocks at its end."""

    loans_disbursed_count: int = Field(description="Loans whose first disbursement fell in the year")
    loans_disbursed_amount: YuanStr = Field(description="Disbursements dated in the year")
    principal_repaid_amount: YuanStr
    interest_repaid_amount: YuanStr
    cumulative_loans_count: int
    cumulative_disbursed_amount: YuanStr = Field(description="Disbursements up to the end of the year")
    outstanding_principal: YuanStr = Field(description="Covered outstanding principal at year end")
    overdue_principal: YuanStr
    npl_principal: YuanStr
    compensated_principal: YuanStr = Field(description="Compensated, not written off, at year end")
    npl_ratio: RatioStr | None = Field(
        description="(npl + compensated) ÷ (covered + compensated) at year end; the totals' ratio is the "
        "ratio of the totals, not a sum"
    )

    @staticmethod
    def fields_of(f: Figures) -> dict[str, Any]:
        return {
            "loans_disbursed_count": f.loans_started,
            "loans_disbursed_amount": yuan_str(f.disbursed_fen),
            "principal_repaid_amount": yuan_str(f.principal_repaid_fen),
            "interest_repaid_amount": yuan_str(f.interest_repaid_fen),
            "cumulative_loans_count": f.cumulative_loans,
            "cumulative_disbursed_amount": yuan_str(f.cumulative_disbursed_fen),
            "outstanding_principal": yuan_str(f.covered_fen),
            "overdue_principal": yuan_str(f.overdue_fen),
            "npl_principal": yuan_str(f.npl_fen),
            "compensated_principal": yuan_str(f.compensated_fen),
            "npl_ratio": _ratio(f.npl_ratio),
        }


class BankFigures(FiguresRead):
    max_liability: YuanStr = Field(description="Covered outstanding × the bank's fund share")
    compensation_paid_amount: YuanStr = Field(description="Compensation paid to the bank in the year")


class BankLineRead(BankFigures):
    bank_id: int
    bank_code: str
    bank_name: str
    fund_share: str = Field(
        description="The share of a loss the fund pays for this bank", examples=["0.8000"]
    )


class ByBankRead(_Yearly):
    """Banks with loans (or compensation) up to the end of the year, by bank code. The totals are the
    sums of the lines (the NPL ratio: of the totals) and equal the summary's figures."""

    rows: list[BankLineRead]
    totals: BankFigures

    @classmethod
    def of(cls, r: service.ByBank) -> ByBankRead:
        return cls(
            **_yearly(r.year, r.scope, r.generated_at),
            rows=[
                BankLineRead(
                    bank_id=line.bank.id,
                    bank_code=line.bank.code,
                    bank_name=line.bank.name,
                    fund_share=format(line.bank.fund_share, "f"),
                    max_liability=yuan_str(line.max_liability_fen),
                    compensation_paid_amount=yuan_str(line.compensation_paid_fen),
                    **FiguresRead.fields_of(line.figures),
                )
                for line in r.lines
            ],
            totals=BankFigures(
                max_liability=yuan_str(r.max_liability_fen),
                compensation_paid_amount=yuan_str(r.compensation_paid_fen),
                **FiguresRead.fields_of(r.totals),
            ),
        )


class GroupLineRead(FiguresRead):
    key: str = Field(description="GB/T 4754 section letter (by industry) or grade A–E, U = unrated")
    name_zh: str
    name_en: str


class BreakdownRead(_Yearly):
    """Lines with any figure up to the end of the year. Totals = sums of the lines = the summary."""

    rows: list[GroupLineRead]
    totals: FiguresRead

    @classmethod
    def of(cls, r: service.Breakdown) -> BreakdownRead:
        return cls(
            **_yearly(r.year, r.scope, r.generated_at),
            rows=[
                GroupLineRead(
                    key=line.key,
                    name_zh=line.name_zh,
                    name_en=line.name_en,
                    **FiguresRead.fields_of(line.figures),
                )
                for line in r.lines
            ],
            totals=FiguresRead(**FiguresRead.fields_of(r.totals)),
        )


class MonthFlows(BaseModel):
    loans_disbursed_count: int = Field(description="Loans whose first disbursement fell in the month")
    loans_disbursed_amount: YuanStr
    principal_repaid_amount: YuanStr
    interest_repaid_amount: YuanStr


class MonthLineRead(MonthFlows):
    month: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2021-01"])
    outstanding_principal: YuanStr = Field(description="Covered outstanding at the month's end")
    overdue_principal: YuanStr
    npl_principal: YuanStr
    compensated_principal: YuanStr


class ByMonthRead(_Yearly):
    """Twelve months of lending and repayments, with stocks at each month's end. The totals sum the
    flows; December's stocks are the year-end stocks of the summary."""

    rows: list[MonthLineRead]
    totals: MonthFlows

    @classmethod
    def of(cls, r: service.ByMonth) -> ByMonthRead:
        t = r.totals_row()
        return cls(
            **_yearly(r.year, r.scope, r.generated_at),
            rows=[
                MonthLineRead(
                    month=f"{m.month:%Y-%m}",
                    loans_disbursed_count=m.loans_started,
                    loans_disbursed_amount=yuan_str(m.disbursed_fen),
                    principal_repaid_amount=yuan_str(m.principal_repaid_fen),
                    interest_repaid_amount=yuan_str(m.interest_repaid_fen),
                    outstanding_principal=yuan_str(m.covered_fen),
                    overdue_principal=yuan_str(m.overdue_fen),
                    npl_principal=yuan_str(m.npl_fen),
                    compensated_principal=yuan_str(m.compensated_fen),
                )
                for m in r.lines
            ],
            totals=MonthFlows(
                loans_disbursed_count=t["loans_disbursed_count"],
                loans_disbursed_amount=yuan_str(t["loans_disbursed_amount"]),
                principal_repaid_amount=yuan_str(t["principal_repaid_amount"]),
                interest_repaid_amount=yuan_str(t["interest_repaid_amount"]),
            ),
        )


# --- aging ----------------------------------------------------------------------------------------------


class AgingBucketRead(BaseModel):
    bucket: str = Field(examples=["1-30", "90+"], description="Days past due; `90+` = more than 90")
    label_zh: str
    label_en: str
    min_days: int
    max_days: int | None = Field(description="null for the open last bucket")
    loans: int
    principal_at_risk: YuanStr = Field(description="Outstanding principal of the bucket's loans")
    share_of_covered: RatioStr | None = Field(description="principal_at_risk ÷ covered_outstanding")


class AgingTotals(BaseModel):
    loans: int
    principal_at_risk: YuanStr
    share_of_covered: RatioStr | None


class AgingLoanRead(BaseModel):
    loan_id: int
    bank_code: str
    bank_loan_ref: str
    credit_code: str
    enterprise_name: str
    state: str = Field(description="overdue | non_performing")
    days_past_due: int = Field(description="As last reported by the bank")
    bucket: str
    outstanding_principal: YuanStr
    npl_since: date | None
    last_reported_on: date | None = Field(description="Date of the loan's latest event")


class AgingRead(_Report):
    """Loans `overdue` or `non_performing` (compensated loans are the fund's, not at risk) by days past
    due as the banks last reported them. Current state only: `as_of` can only be today."""

    as_of: date
    covered_outstanding: YuanStr = Field(description="Covered outstanding principal now")
    buckets: list[AgingBucketRead]
    totals: AgingTotals
    loans: list[AgingLoanRead] | None = Field(description="The loans, with `detail=true`; else null")

    @classmethod
    def of(cls, a: service.Aging) -> AgingRead:
        return cls(
            generated_at=a.generated_at,
            bank=_bank_ref(a.scope),
            as_of=a.as_of,
            covered_outstanding=yuan_str(a.covered_fen),
            buckets=[
                AgingBucketRead(
                    bucket=b.key,
                    label_zh=b.label_zh,
                    label_en=b.label_en,
                    min_days=b.min_days,
                    max_days=b.max_days,
                    loans=b.loans,
                    principal_at_risk=yuan_str(b.principal_fen),
                    share_of_covered=_ratio(service.ratio(b.principal_fen, a.covered_fen)),
                )
                for b in a.buckets
            ],
            totals=AgingTotals(
                loans=a.loans,
                principal_at_risk=yuan_str(a.principal_fen),
                share_of_covered=_ratio(service.ratio(a.principal_fen, a.covered_fen)),
            ),
            loans=None
            if a.detail is None
            else [
                AgingLoanRead(**{**row, "outstanding_principal": yuan_str(row["outstanding_principal"])})
                for row in a.detail
            ],
        )


# --- discrepancies -----------------------------------------------------------------------------------------


class DiscrepancyLine(BaseModel):
    id: int
    report_id: int
    report_version: int = Field(description="1: the month's report; 2, 3...: its amendments")
    month_end: date
    bank_id: int
    bank_code: str
    loan_id: int | None
    bank_loan_ref: str
    kind: str = Field(
        description="balance_mismatch | missing_from_report | unknown_loan | not_open | update_refused"
    )
    reported_outstanding: YuanStr | None
    derived_outstanding: YuanStr | None = Field(description="What the loan's events give")
    difference: YuanStr | None = Field(description="reported − derived, when both are known")
    reported_days_past_due: int | None


class DiscrepancyTotals(BaseModel):
    count: int
    reported_outstanding: YuanStr
    derived_outstanding: YuanStr
    difference: YuanStr


_AMOUNTS = ("reported_outstanding", "derived_outstanding", "difference")


class DiscrepanciesRead(_Report):
    """Differences between the banks' month-end status reports and their events, by month end and bank.
    JSON holds at most 50,000 rows (409 `report_too_large` beyond); the CSV streams any number."""

    month_end: date | None
    kind: str | None
    rows: list[DiscrepancyLine]
    totals: DiscrepancyTotals

    @classmethod
    def of(cls, d: service.Discrepancies) -> DiscrepanciesRead:
        rows = list(d.rows)
        sums = {k: sum(r[k] for r in rows if r[k] is not None) for k in _AMOUNTS}
        return cls(
            generated_at=d.generated_at,
            bank=_bank_ref(d.scope),
            month_end=d.month_end,
            kind=d.kind,
            rows=[DiscrepancyLine(**{**r, **{k: _yuan(r[k]) for k in _AMOUNTS}}) for r in rows],
            totals=DiscrepancyTotals(count=len(rows), **{k: yuan_str(v) for k, v in sums.items()}),
        )


# --- claims ----------------------------------------------------------------------------------------------


class ClaimLine(BaseModel):
    claim_id: int
    bank_code: str
    loan_id: int
    bank_loan_ref: str
    credit_code: str
    enterprise_name: str
    state: str = Field(description="submitted | approved | rejected | paid")
    npl_since: date | None = Field(description="The day the loan became non-performing (its default)")
    early_default: bool = Field(
        description="Non-performing within the early-default window of the first disbursement"
    )
    filed_on: date
    reviewed_on: date | None = Field(description="Approved or rejected on")
    paid_on: date | None
    days_default_to_payment: int | None = Field(description="paid_on − npl_since, in days; null until paid")
    principal_at_default: YuanStr = Field(description="Outstanding principal at default, as the bank states")
    fund_share: str = Field(examples=["0.8000"])
    claimed: YuanStr = Field(description="fund_share × principal_at_default")
    approved: YuanStr | None = Field(description="As approved (possibly reduced); kept if later rejected")
    reserved: YuanStr = Field(description="Fund cash reserved for the claim now")
    paid: YuanStr | None
    recovered_gross: YuanStr = Field(description="Recovered by the bank after compensation, gross")
    recovery_costs: YuanStr
    recoveries_fund_share: YuanStr = Field(description="The fund's share of the net recoveries")
    remitted: YuanStr = Field(description="Remitted by the bank to the fund")
    receivable: YuanStr = Field(description="recoveries_fund_share − remitted")
    collection_closed_on: date | None = Field(description="Collection closed: the loan is written off")
    reason: str | None = Field(description="Rejection reason, or the reason for a reduced approval")

    @classmethod
    def of(cls, row: dict[str, Any]) -> ClaimLine:
        amounts = {k: _yuan(row[k]) for k in service.CLAIM_AMOUNTS}
        return cls(**{**row, **amounts, "fund_share": format(row["fund_share"], "f")})


class ClaimTotals(BaseModel):
    count: int
    principal_at_default: YuanStr
    claimed: YuanStr
    approved: YuanStr
    reserved: YuanStr
    paid: YuanStr
    recovered_gross: YuanStr
    recovery_costs: YuanStr
    recoveries_fund_share: YuanStr
    remitted: YuanStr
    receivable: YuanStr


def claim_totals(rows: list[dict[str, Any]]) -> ClaimTotals:
    sums = {k: yuan_str(sum(r[k] or 0 for r in rows)) for k in service.CLAIM_AMOUNTS}
    return ClaimTotals(count=len(rows), **sums)


class ClaimStateLine(BaseModel):
    state: str
    count: int
    claimed: YuanStr
    approved: YuanStr
    paid: YuanStr

    @classmethod
    def of(cls, line: service.StateLine) -> ClaimStateLine:
        return cls(
            state=line.state.value,
            count=line.count,
            claimed=yuan_str(line.claimed_fen),
            approved=yuan_str(line.approved_fen),
            paid=yuan_str(line.paid_fen),
        )


class ClaimsRegisterRead(_Report):
    """Every compensation claim, oldest filing first, with its recoveries. Totals are the sums of the
    rows. JSON holds at most 50,000 rows (409 `report_too_large` beyond); the CSV streams any number."""

    state: str | None = Field(description="The state filter, if any")
    rows: list[ClaimLine]
    totals: ClaimTotals
    by_state: list[ClaimStateLine] = Field(description="The claims counted per state, every state listed")

    @classmethod
    def of(cls, c: service.Claims) -> ClaimsRegisterRead:
        rows = list(c.rows)
        return cls(
            generated_at=c.generated_at,
            bank=_bank_ref(c.scope),
            state=None if c.state is None else c.state.value,
            rows=[ClaimLine.of(r) for r in rows],
            totals=claim_totals(rows),
            by_state=[ClaimStateLine.of(line) for line in c.by_state],
        )


# --- the fund month by month ----------------------------------------------------------------------------


class FundFlowTotals(BaseModel):
    contributions: YuanStr = Field(description="Contributions (city + district, net of reversals)")
    compensation_paid: YuanStr = Field(description="Compensation paid to the banks")
    recoveries_received: YuanStr = Field(description="Recoveries the banks remitted to the fund")
    other: YuanStr = Field(description="Interest on the fund's account and other reversals")


class FundMonthRead(FundFlowTotals):
    month: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2021-01"])
    fund_size: YuanStr = Field(description="Contributions up to the month's end")
    fund_balance: YuanStr = Field(description="The fund's cash at the month's end")
    reserved_balance: YuanStr
    available_balance: YuanStr


class FundFlowsRead(_Yearly):
    """The fund's movements month by month and its position at each month's end (bureau staff only).
    December's position is the summary's year-end position."""

    opening_balance: YuanStr = Field(description="The fund's cash at the end of the previous year")
    rows: list[FundMonthRead]
    totals: FundFlowTotals

    @classmethod
    def of(cls, r: service.FundFlows) -> FundFlowsRead:
        def amounts(row: dict[str, Any]) -> dict[str, Any]:
            return {k: v if k == "month" else yuan_str(v) for k, v in row.items()}

        return cls(
            **_yearly(r.year, r.scope, r.generated_at),
            opening_balance=yuan_str(r.opening_balance_fen),
            rows=[FundMonthRead(**amounts(m.row())) for m in r.lines],
            totals=FundFlowTotals(**amounts(r.totals_row())),
        )


# --- one enterprise ----------------------------------------------------------------------------------------


class EnterpriseInfo(BaseModel):
    credit_code: str
    name: str
    industry: str
    region_code: str
    tech_reg_no: str | None
    high_tech_cert_no: str | None
    high_tech_cert_expiry: date | None


class ApplicationLine(BaseModel):
    application_no: str
    application_date: date
    bank_code: str
    status: str
    ineligible_reason: str | None
    requested_amount: YuanStr
    term_months: int
    score: str | None
    grade: str | None
    credit_line: YuanStr | None
    decision_date: date | None
    approved_amount: YuanStr | None
    approved_rate_pct: str | None
    rejection_reason: str | None


class LoanLine(BaseModel):
    loan_id: int
    bank_code: str
    bank_loan_ref: str
    grade: str
    contract_amount: YuanStr
    annual_rate_pct: str
    start_date: date
    maturity_date: date
    state: str
    disbursed_amount: YuanStr
    principal_repaid_amount: YuanStr
    interest_repaid_amount: YuanStr
    outstanding_principal: YuanStr
    days_past_due: int
    first_disbursed_on: date | None
    npl_since: date | None
    settled_on: date | None
    compensated_on: date | None
    written_off_on: date | None


_APP_AMOUNTS = ("requested_amount", "credit_line", "approved_amount")
_LOAN_AMOUNTS = (
    "contract_amount",
    "disbursed_amount",
    "principal_repaid_amount",
    "interest_repaid_amount",
    "outstanding_principal",
)


def _text(v: Any) -> str | None:
    return None if v is None else format(v, "f") if isinstance(v, Decimal) else str(v)


class EnterpriseHistoryRead(_Report):
    """Every application, loan and claim of one enterprise, oldest first; a bank sees only its own."""

    credit_code: str
    enterprise: EnterpriseInfo | None = Field(description="null when the code is not in the registry")
    applications: list[ApplicationLine]
    loans: list[LoanLine]
    claims: list[ClaimLine]

    @classmethod
    def of(cls, h: service.EnterpriseHistory) -> EnterpriseHistoryRead:
        e = h.enterprise
        return cls(
            generated_at=h.generated_at,
            bank=_bank_ref(h.scope),
            credit_code=h.credit_code,
            enterprise=None
            if e is None
            else EnterpriseInfo(
                credit_code=e.credit_code,
                name=e.name,
                industry=e.industry,
                region_code=e.region_code,
                tech_reg_no=e.tech_reg_no,
                high_tech_cert_no=e.high_tech_cert_no,
                high_tech_cert_expiry=e.high_tech_cert_expiry,
            ),
            applications=[
                ApplicationLine(
                    **{
                        **a,
                        **{k: _yuan(a[k]) for k in _APP_AMOUNTS},
                        "score": _text(a["score"]),
                        "approved_rate_pct": _text(a["approved_rate_pct"]),
                    }
                )
                for a in h.applications
            ],
            loans=[
                LoanLine(
                    **{
                        **loan,
                        **{k: yuan_str(loan[k]) for k in _LOAN_AMOUNTS},
                        "annual_rate_pct": format(loan["annual_rate_pct"], "f"),
                    }
                )
                for loan in h.loans
            ],
            claims=[ClaimLine.of(c) for c in h.claims],
        )
