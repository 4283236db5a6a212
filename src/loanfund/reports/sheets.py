"""The CSV / Excel layout of each report: its sections, bilingual columns and totals rows, for the export
kit (`export.py`). Amount cells hold integer fen here; the kit shows them in yuan (and 万元)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loanfund.core.money import fen_to_yuan
from loanfund.reports import service
from loanfund.reports.export import Column, Report, Section
from loanfund.reports.export import ColumnKind as K

PERCENT = "0.00%"
MULTIPLE = "0.00"


def _period(year: int, scope: service.Scope) -> str:
    start, end = service.year_bounds(year)
    return f"{year}年 / {year} ({start} – {end}){_bank_note(scope)}"


def _bank_note(scope: service.Scope) -> str:
    b = scope.bank
    return "" if b is None else f" · 合作银行 / Bank: {b.code} {b.name}"


def stem(name: str, scope: service.Scope, *parts: object) -> str:
    """A download's file name without extension: the report's Chinese name, the bank, the period."""
    bits = [name, *(str(p) for p in parts)]
    if scope.bank is not None:
        bits.insert(1, scope.bank.code)
    return "-".join(bits)


# --- summary ---------------------------------------------------------------------------------------

_CODE = Column("key", "指标代码", "Code", width=30)
_INDICATOR = Column("indicator", "指标", "Indicator", width=44)


def _label(zh: str, en: str) -> str:
    return f"{zh} / {en}"


def summary_report(s: service.Summary) -> Report:
    """Four sheets: counts and amounts (year, cumulative), year-end positions, ratios. A bank's key gets
    no fund rows (see `service.Scope`)."""
    f, b, after, fund = s.figures, s.scope.bank_id, s.after, s.scope.shows_fund
    Line = tuple[str, str, str, int | None, int | None]  # key, zh, en, in the year, cumulative

    counts: list[Line] = [
        ("loans_disbursed_count", "放款笔数", "Loans disbursed", f.loans_started, f.cumulative_loans),
        ("enterprises_served", "服务企业数", "Enterprises served", s.enterprises_served,
         s.cumulative_enterprises_served),
        ("first_time_borrowers", "首贷企业数", "First-time borrowers", s.first_time_borrowers, None),
    ]  # fmt: skip
    flows: list[Line] = [
        (
            "loans_disbursed_amount",
            "放款金额",
            "Amount disbursed",
            f.disbursed_fen,
            f.cumulative_disbursed_fen,
        ),
        ("average_loan_amount", "户均贷款", "Average loan", s.average_loan_fen, None),
        ("principal_repaid_amount", "收回本金", "Principal repaid", f.principal_repaid_fen, None),
        ("interest_repaid_amount", "收回利息", "Interest repaid", f.interest_repaid_fen, None),
    ]
    if fund:
        flows += [
            ("contributions_city", "市级财政出资", "Contributions, city", s.contributions_in_year("city"),
             after.contributions_fen["city"]),
            ("contributions_district", "区级财政出资", "Contributions, district",
             s.contributions_in_year("district"), after.contributions_fen["district"]),
            ("fund_contributed", "基金出资合计", "Contributions, total", s.fund_contributed_in_year_fen,
             after.fund_size_fen),
        ]  # fmt: skip
    flows += [
        ("compensation_paid", "代偿支出", "Compensation paid", s.compensation_paid_in_year_fen,
         after.comp_paid_fen(b)),
        ("recoveries_recognised", "追偿应收（基金份额）", "Recoveries recognised (fund's share)",
         s.recoveries_recognised_in_year_fen, after.recoveries_recognised_fen(b)),
        ("recoveries_received", "追偿到账", "Recoveries received", s.recoveries_received_in_year_fen,
         after.recoveries_received_fen(b)),
    ]  # fmt: skip
    stocks = [
        ("outstanding_principal", "在保贷款余额", "Covered outstanding principal", f.covered_fen),
        ("overdue_principal", "逾期贷款余额", "Overdue principal", f.overdue_fen),
        ("npl_principal", "不良贷款余额", "Non-performing principal", f.npl_fen),
        ("compensated_principal", "已代偿未核销余额", "Compensated, not written off", f.compensated_fen),
        ("max_liability", "最高代偿责任", "Maximum liability", s.max_liability_fen),
    ]
    if fund:
        stocks += [
            ("fund_size", "基金规模", "Fund size", after.fund_size_fen),
            ("fund_balance", "基金余额", "Fund balance", after.balance_fen),
            ("reserved_balance", "已预留代偿资金", "Reserved for approved claims", after.reserved_fen),
            ("available_balance", "可用余额", "Available balance", after.cash_available_fen),
        ]
    ratios = [("npl_ratio", "不良率", "NPL ratio", s.npl_ratio)]
    if fund:
        ratios += [
            ("leverage", "放大倍数", "Leverage (× fund balance)", s.leverage),
            ("coverage_ratio", "代偿覆盖率", "Coverage ratio", s.coverage_ratio),
        ]
    count_rows = [
        {"key": k, "indicator": _label(zh, en), "in_year": y, "cumulative": c} for k, zh, en, y, c in counts
    ]
    amount_rows = [
        {"key": k, "indicator": _label(zh, en), "in_year": y, "in_year_wan": y, "cumulative": c,
         "cumulative_wan": c}
        for k, zh, en, y, c in flows
    ]  # fmt: skip
    stock_rows = [{"key": k, "indicator": _label(zh, en), "amount": v, "wan": v} for k, zh, en, v in stocks]
    ratio_rows = [{"key": k, "indicator": _label(zh, en), "value": v} for k, zh, en, v in ratios]
    return Report(
        "知识价值信用贷款及风险补偿基金统计汇总",
        "Knowledge-value credit loans and the risk compensation fund: summary",
        _period(s.year, s.scope),
        s.generated_at,
        [
            Section(
                "笔数与户数（本年、累计）",
                "Counts (year, cumulative)",
                "笔数 Counts",
                [
                    _CODE,
                    _INDICATOR,
                    Column("in_year", "本年", "Year", K.int),
                    Column("cumulative", "累计", "Cumulative", K.int),
                ],
                count_rows,
            ),
            Section(
                "金额（本年、累计）",
                "Amounts (year, cumulative)",
                "金额 Amounts",
                [
                    _CODE,
                    _INDICATOR,
                    Column("in_year", "本年（元）", "Year (yuan)", K.amount),
                    Column("in_year_wan", "本年（万元）", "Year (10k yuan)", K.wan),
                    Column("cumulative", "累计（元）", "Cumulative (yuan)", K.amount),
                    Column("cumulative_wan", "累计（万元）", "Cumulative (10k yuan)", K.wan),
                ],
                amount_rows,
            ),
            Section(
                "年末余额",
                "Positions at year end",
                "年末余额 Year end",
                [
                    _CODE,
                    _INDICATOR,
                    Column("amount", "金额（元）", "Amount (yuan)", K.amount),
                    Column("wan", "金额（万元）", "Amount (10k yuan)", K.wan),
                ],
                stock_rows,
            ),
            Section(
                "比率（年末）",
                "Ratios at year end",
                "比率 Ratios",
                [_CODE, _INDICATOR, Column("value", "数值", "Value", K.ratio)],
                ratio_rows,
            ),
        ],
    )


# --- breakdowns ----------------------------------------------------------------------------------


def _figure_columns(*, wan: bool) -> list[Column]:
    def w(key: str, zh: str, en: str) -> list[Column]:
        return [Column(key, f"{zh}（万元）", f"{en} (10k yuan)", K.wan)] if wan else []

    return [
        Column("loans_disbursed_count", "放款笔数", "Loans disbursed", K.int),
        Column("loans_disbursed_amount", "放款金额（元）", "Amount disbursed (yuan)", K.amount),
        *w("loans_disbursed_wan", "放款金额", "Amount disbursed"),
        Column("principal_repaid_amount", "收回本金（元）", "Principal repaid (yuan)", K.amount),
        Column("interest_repaid_amount", "收回利息（元）", "Interest repaid (yuan)", K.amount),
        Column("cumulative_loans_count", "累计放款笔数", "Cumulative loans", K.int),
        Column("cumulative_disbursed_amount", "累计放款（元）", "Cumulative disbursed (yuan)", K.amount),
        *w("cumulative_disbursed_wan", "累计放款", "Cumulative disbursed"),
        Column("outstanding_principal", "年末在保余额（元）", "Covered outstanding (yuan)", K.amount),
        *w("outstanding_wan", "年末在保余额", "Covered outstanding"),
        Column("overdue_principal", "年末逾期余额（元）", "Overdue (yuan)", K.amount),
        Column("npl_principal", "年末不良余额（元）", "Non-performing (yuan)", K.amount),
        Column(
            "compensated_principal", "已代偿未核销（元）", "Compensated, not written off (yuan)", K.amount
        ),
        Column("npl_ratio", "不良率", "NPL ratio", K.ratio, number_format=PERCENT),
    ]


def by_bank_report(r: service.ByBank) -> Report:
    columns = [
        Column("bank_code", "银行代码", "Bank code"),
        Column("bank_name", "合作银行", "Partner bank", width=30),
        Column("fund_share", "基金代偿比例", "Fund share", K.ratio, number_format=PERCENT),
        *_figure_columns(wan=True),
        Column("max_liability", "最高代偿责任（元）", "Maximum liability (yuan)", K.amount),
        Column("compensation_paid_amount", "本年代偿（元）", "Compensation paid (yuan)", K.amount),
    ]
    return Report(
        "知识价值信用贷款分银行统计",
        "Knowledge-value credit loans by partner bank",
        _period(r.year, r.scope),
        r.generated_at,
        [
            Section(
                "分银行",
                "By bank",
                "按银行 By bank",
                columns,
                [line.row() for line in r.lines],
                totals=r.totals_row(),
            )
        ],
    )


def breakdown_report(r: service.Breakdown, *, industry: bool) -> Report:
    if industry:
        names = ("行业", "By industry", "按行业 By industry", "行业门类", "Section")
        title = ("知识价值信用贷款分行业统计", "Knowledge-value credit loans by industry (GB/T 4754)")
    else:
        names = ("信用等级", "By grade", "按等级 By grade", "等级", "Grade")
        title = ("知识价值信用贷款分信用等级统计", "Knowledge-value credit loans by knowledge-value grade")
    columns = [
        Column("key", names[3], names[4]),
        Column("name_zh", "名称", "Name (zh)", width=30),
        Column("name_en", "Name", "Name (en)", width=30),
        *_figure_columns(wan=False),
    ]
    rows = [
        {"key": line.key, "name_zh": line.name_zh, "name_en": line.name_en, **line.figures.row()}
        for line in r.lines
    ]
    return Report(
        *title,
        _period(r.year, r.scope),
        r.generated_at,
        [Section(names[0], names[1], names[2], columns, rows, totals=r.totals.row())],
    )


def by_month_report(r: service.ByMonth) -> Report:
    columns = [
        Column("month", "月份", "Month"),
        Column("loans_disbursed_count", "放款笔数", "Loans disbursed", K.int),
        Column("loans_disbursed_amount", "放款金额（元）", "Amount disbursed (yuan)", K.amount),
        Column("principal_repaid_amount", "收回本金（元）", "Principal repaid (yuan)", K.amount),
        Column("interest_repaid_amount", "收回利息（元）", "Interest repaid (yuan)", K.amount),
        Column(
            "outstanding_principal", "月末在保余额（元）", "Covered outstanding, month end (yuan)", K.amount
        ),
        Column("overdue_principal", "月末逾期余额（元）", "Overdue, month end (yuan)", K.amount),
        Column("npl_principal", "月末不良余额（元）", "Non-performing, month end (yuan)", K.amount),
        Column(
            "compensated_principal", "已代偿未核销（元）", "Compensated, not written off (yuan)", K.amount
        ),
    ]
    return Report(
        "知识价值信用贷款分月统计",
        "Knowledge-value credit loans by month: lending and repayments",
        _period(r.year, r.scope),
        r.generated_at,
        [
            Section(
                "分月（余额为月末数，合计行仅合计发生额）",
                "By month (stocks at month end; the totals row sums the flows only)",
                "按月份 By month",
                columns,
                [m.row() for m in r.lines],
                totals=r.totals_row(),
            )
        ],
    )


def fund_flows_report(r: service.FundFlows) -> Report:
    columns = [
        Column("month", "月份", "Month"),
        Column("contributions", "财政出资（元）", "Contributions (yuan)", K.amount),
        Column("compensation_paid", "代偿支出（元）", "Compensation paid (yuan)", K.amount),
        Column("recoveries_received", "追偿到账（元）", "Recoveries received (yuan)", K.amount),
        Column("other", "利息及其他（元）", "Interest and other (yuan)", K.amount),
        Column("fund_size", "月末基金规模（元）", "Fund size, month end (yuan)", K.amount),
        Column("fund_balance", "月末基金余额（元）", "Fund balance, month end (yuan)", K.amount),
        Column("reserved_balance", "已预留（元）", "Reserved (yuan)", K.amount),
        Column("available_balance", "可用余额（元）", "Available (yuan)", K.amount),
    ]
    return Report(
        "风险补偿基金分月收支",
        "The risk compensation fund month by month",
        f"{_period(r.year, r.scope)} · 上年末余额 / opening balance: {fen_to_yuan(r.opening_balance_fen):,}",
        r.generated_at,
        [
            Section(
                "分月（余额为月末数，合计行仅合计发生额）",
                "By month (positions at month end; the totals row sums the flows only)",
                "按月份 By month",
                columns,
                [m.row() for m in r.lines],
                totals=r.totals_row(),
            )
        ],
    )


# --- aging -------------------------------------------------------------------------------------------

AGING_LOAN_COLUMNS = [
    Column("bank_code", "银行代码", "Bank code"),
    Column("bank_loan_ref", "贷款合同号", "Bank loan ref", width=20),
    Column("credit_code", "统一社会信用代码", "Credit code", width=22),
    Column("enterprise_name", "企业名称", "Enterprise", width=32),
    Column("state", "状态", "State"),
    Column("days_past_due", "逾期天数", "Days past due", K.int),
    Column("bucket", "账龄区间", "Bucket"),
    Column("outstanding_principal", "贷款余额（元）", "Outstanding principal (yuan)", K.amount),
    Column("npl_since", "转为不良日", "NPL since", K.date),
    Column("last_reported_on", "最近报送日", "Last reported on", K.date),
    Column("loan_id", "贷款编号", "Loan id", K.int),
]


def aging_report(a: service.Aging) -> Report:
    bucket_rows = [
        {
            "bucket": f"{b.label_zh} / {b.label_en}",
            "min_days": b.min_days,
            "max_days": b.max_days,
            "loans": b.loans,
            "principal": b.principal_fen,
            "share": service.ratio(b.principal_fen, a.covered_fen),
        }
        for b in a.buckets
    ]
    sections = [
        Section(
            "逾期账龄",
            "Aging of overdue loans",
            "账龄 Aging",
            [
                Column("bucket", "逾期天数区间", "Days past due", width=26),
                Column("min_days", "起（天）", "From (days)", K.int),
                Column("max_days", "止（天）", "To (days)", K.int),
                Column("loans", "笔数", "Loans", K.int),
                Column("principal", "风险本金（元）", "Principal at risk (yuan)", K.amount),
                Column("share", "占在保余额", "Share of covered", K.ratio, number_format=PERCENT),
            ],
            bucket_rows,
            totals={
                "loans": a.loans,
                "principal": a.principal_fen,
                "share": service.ratio(a.principal_fen, a.covered_fen),
            },
        )
    ]
    if a.detail is not None:
        running = service.RunningTotals(["outstanding_principal"])
        sections.append(
            Section(
                "逾期贷款明细",
                "Overdue loans",
                "明细 Loans",
                AGING_LOAN_COLUMNS,
                running.feed(a.detail),
                totals=running,
            )
        )
    period = f"截至 {a.as_of} / As of {a.as_of}{_bank_note(a.scope)}"
    return Report("逾期贷款账龄分析", "Aging of overdue loans", period, a.generated_at, sections)


# --- discrepancies ------------------------------------------------------------------------------------

DISCREPANCY_COLUMNS = [
    Column("month_end", "报送月末", "Month end", K.date),
    Column("bank_code", "银行代码", "Bank code"),
    Column("bank_loan_ref", "贷款合同号", "Bank loan ref", width=20),
    Column("kind", "差异类型", "Kind", width=20),
    Column("reported_outstanding", "报送余额（元）", "Reported outstanding (yuan)", K.amount),
    Column("derived_outstanding", "系统余额（元）", "Derived outstanding (yuan)", K.amount),
    Column("difference", "差额（元）", "Difference (yuan)", K.amount),
    Column("reported_days_past_due", "报送逾期天数", "Reported days past due", K.int),
    Column("loan_id", "贷款编号", "Loan id", K.int),
    Column("report_id", "报告编号", "Report id", K.int),
    Column("report_version", "报告版本", "Report version", K.int),
    Column("id", "差异编号", "Discrepancy id", K.int),
]


def discrepancies_report(d: service.Discrepancies) -> Report:
    running = service.RunningTotals(["reported_outstanding", "derived_outstanding", "difference"])
    filters = []
    if d.month_end is not None:
        filters.append(f"月末 / Month end {d.month_end}")
    if d.kind is not None:
        filters.append(f"类型 / Kind {d.kind}")
    period = (" · ".join(filters) or "全部 / All") + _bank_note(d.scope)
    return Report(
        "月度报送差异",
        "Discrepancies in the banks' monthly status reports",
        period,
        d.generated_at,
        [
            Section(
                "报送差异",
                "Discrepancies",
                "差异 Discrepancies",
                DISCREPANCY_COLUMNS,
                running.feed(d.rows),
                totals=running,
            )
        ],
    )


# --- claims ------------------------------------------------------------------------------------------

CLAIM_COLUMNS = [
    Column("claim_id", "代偿申请编号", "Claim id", K.int),
    Column("filed_on", "申请日", "Filed on", K.date),
    Column("bank_code", "银行代码", "Bank code"),
    Column("bank_loan_ref", "贷款合同号", "Bank loan ref", width=20),
    Column("credit_code", "统一社会信用代码", "Credit code", width=22),
    Column("enterprise_name", "企业名称", "Enterprise", width=32),
    Column("state", "状态", "State"),
    Column("npl_since", "转为不良日", "Default (NPL since)", K.date),
    Column("early_default", "早期违约", "Early default"),
    Column("principal_at_default", "不良时本金（元）", "Principal at default (yuan)", K.amount),
    Column("fund_share", "基金代偿比例", "Fund share", K.ratio, number_format=PERCENT),
    Column("claimed", "申请代偿额（元）", "Claimed (yuan)", K.amount),
    Column("approved", "批准金额（元）", "Approved (yuan)", K.amount),
    Column("reviewed_on", "审核日", "Reviewed on", K.date),
    Column("reserved", "已预留（元）", "Reserved (yuan)", K.amount),
    Column("paid", "已代偿（元）", "Paid (yuan)", K.amount),
    Column("paid_on", "代偿日", "Paid on", K.date),
    Column("days_default_to_payment", "不良至代偿天数", "Days from default to payment", K.int),
    Column("recovered_gross", "追偿回收（元）", "Recovered, gross (yuan)", K.amount),
    Column("recovery_costs", "追偿费用（元）", "Collection costs (yuan)", K.amount),
    Column("recoveries_fund_share", "基金应收份额（元）", "Fund's share of recoveries (yuan)", K.amount),
    Column("remitted", "已返还基金（元）", "Remitted to the fund (yuan)", K.amount),
    Column("receivable", "待返还（元）", "Receivable (yuan)", K.amount),
    Column("collection_closed_on", "核销日", "Collection closed on", K.date),
    Column("reason", "核减或拒绝原因", "Reduction or rejection reason", width=30),
]


def _claims_section(rows: Any, totals: Any) -> Section:
    return Section("代偿台账", "Claims register", "代偿 Claims", CLAIM_COLUMNS, rows, totals=totals)


def claims_report(c: service.Claims) -> Report:
    running = service.RunningTotals(service.CLAIM_AMOUNTS)
    status = "全部 / All" if c.state is None else f"状态 / State: {c.state.value}"
    return Report(
        "风险补偿代偿台账",
        "Compensation claims register",
        status + _bank_note(c.scope),
        c.generated_at,
        [_claims_section(running.feed(c.rows), running)],
    )


# --- one enterprise ----------------------------------------------------------------------------------------

_ENTERPRISE_COLUMNS = [
    Column("credit_code", "统一社会信用代码", "Credit code", width=22),
    Column("name", "企业名称", "Enterprise", width=32),
    Column("industry", "行业门类", "Industry"),
    Column("region_code", "区划代码", "Region code"),
    Column("tech_reg_no", "科技型企业入库编号", "Tech registration no.", width=22),
    Column("high_tech_cert_no", "高新技术企业证书号", "High-tech certificate no.", width=22),
    Column("high_tech_cert_expiry", "证书有效期至", "Certificate expiry", K.date),
]
_APPLICATION_COLUMNS = [
    Column("application_no", "申请编号", "Application no.", width=22),
    Column("application_date", "申请日期", "Application date", K.date),
    Column("bank_code", "银行代码", "Bank code"),
    Column("status", "状态", "Status"),
    Column("ineligible_reason", "不符合原因", "Ineligible reason", width=24),
    Column("requested_amount", "申请金额（元）", "Requested (yuan)", K.amount),
    Column("term_months", "期限（月）", "Term (months)", K.int),
    Column("score", "评分", "Score", K.ratio, number_format="0.00"),
    Column("grade", "等级", "Grade"),
    Column("credit_line", "授信额度（元）", "Credit line (yuan)", K.amount),
    Column("decision_date", "审批日期", "Decision date", K.date),
    Column("approved_amount", "批准金额（元）", "Approved (yuan)", K.amount),
    Column("approved_rate_pct", "批准利率（%）", "Approved rate (%)", K.ratio, number_format="0.0000"),
    Column("rejection_reason", "拒绝原因", "Rejection reason", width=24),
]
_LOAN_COLUMNS = [
    Column("loan_id", "贷款编号", "Loan id", K.int),
    Column("bank_code", "银行代码", "Bank code"),
    Column("bank_loan_ref", "贷款合同号", "Bank loan ref", width=20),
    Column("grade", "等级", "Grade"),
    Column("contract_amount", "合同金额（元）", "Contract amount (yuan)", K.amount),
    Column("annual_rate_pct", "年利率（%）", "Annual rate (%)", K.ratio, number_format="0.0000"),
    Column("start_date", "起始日", "Start date", K.date),
    Column("maturity_date", "到期日", "Maturity date", K.date),
    Column("state", "状态", "State"),
    Column("disbursed_amount", "已放款（元）", "Disbursed (yuan)", K.amount),
    Column("principal_repaid_amount", "已还本金（元）", "Principal repaid (yuan)", K.amount),
    Column("interest_repaid_amount", "已付利息（元）", "Interest repaid (yuan)", K.amount),
    Column("outstanding_principal", "贷款余额（元）", "Outstanding (yuan)", K.amount),
    Column("days_past_due", "逾期天数", "Days past due", K.int),
    Column("first_disbursed_on", "首次放款日", "First disbursed on", K.date),
    Column("npl_since", "转为不良日", "NPL since", K.date),
    Column("settled_on", "结清日", "Settled on", K.date),
    Column("compensated_on", "代偿日", "Compensated on", K.date),
    Column("written_off_on", "核销日", "Written off on", K.date),
]


def _sums(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {k: sum(r[k] or 0 for r in rows) for k in keys}


def enterprise_history_report(h: service.EnterpriseHistory) -> Report:
    sections = []
    e = h.enterprise
    if e is not None:
        sections.append(
            Section(
                "企业信息",
                "Enterprise",
                "企业 Enterprise",
                _ENTERPRISE_COLUMNS,
                [{c.key: getattr(e, c.key) for c in _ENTERPRISE_COLUMNS}],
            )
        )
    sections += [
        Section(
            "贷款申请",
            "Applications",
            "申请 Applications",
            _APPLICATION_COLUMNS,
            h.applications,
            totals=_sums(h.applications, ["requested_amount", "approved_amount"]),
        ),
        Section(
            "贷款",
            "Loans",
            "贷款 Loans",
            _LOAN_COLUMNS,
            h.loans,
            totals=_sums(
                h.loans,
                [
                    "contract_amount",
                    "disbursed_amount",
                    "principal_repaid_amount",
                    "interest_repaid_amount",
                    "outstanding_principal",
                ],
            ),
        ),
    ]
    sections.append(_claims_section(h.claims, _sums(h.claims, service.CLAIM_AMOUNTS)))
    name = f" {e.name}" if e is not None else ""
    period = f"{h.credit_code}{name}{_bank_note(h.scope)}"
    return Report("企业贷款档案", "Enterprise history", period, h.generated_at, sections)
