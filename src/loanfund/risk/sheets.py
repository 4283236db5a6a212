"""The CSV / Excel layouts of the stress test runs and the bank ratings, for the export kit
(`reports/export.py`): the same figures as the JSON answers, in bilingual columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from loanfund.core.config import RATING_MEASURES
from loanfund.core.money import to_fen
from loanfund.reports.export import Column, Report, Section
from loanfund.reports.export import ColumnKind as K
from loanfund.reports.service import now
from loanfund.risk.schemas import BankRatingRead, StressTestRead, StressTestSummary

PROBABILITY = "0.0000%"


def _fen(yuan: str | None) -> int | None:
    return None if yuan is None else to_fen(Decimal(yuan))


# --- stress tests ---------------------------------------------------------------------------------------

_RESULTS: list[tuple[str, str, str, str]] = [  # key, zh, en, kind (amount | probability | count)
    ("covered_outstanding", "在保贷款余额", "Covered outstanding", "amount"),
    ("covered_loans", "在保贷款笔数", "Covered loans", "count"),
    ("simulated_outstanding", "参与模拟余额", "Simulated outstanding", "amount"),
    ("available_balance", "基金可用余额", "Available balance", "amount"),
    ("fund_size", "基金规模", "Fund size", "amount"),
    ("expected_loss", "预期损失", "Expected loss", "amount"),
    ("expected_loss_standard_error", "预期损失模拟误差", "Expected loss: Monte Carlo error", "amount"),
    ("var_95", "95%在险价值", "VaR 95", "amount"),
    ("var_99", "99%在险价值", "VaR 99", "amount"),
    ("expected_shortfall_99", "99%预期短缺", "Expected shortfall 99", "amount"),
    ("p_exhaustion", "基金耗尽概率", "Probability of exhaustion", "probability"),
    ("p_programme_breaker", "触发全局熔断概率", "Probability of the programme breaker", "probability"),
]


def stress_run_report(run: StressTestRead) -> Report:
    out, inputs = run.outputs, run.inputs
    results = []
    for key, zh, en, kind in _RESULTS:
        value = getattr(out, key)
        results.append(
            {
                "key": key,
                "indicator": f"{zh} / {en}",
                "amount": _fen(value) if kind == "amount" else None,
                "count": value if kind == "count" else None,
                "probability": Decimal(value) if kind == "probability" else None,
            }
        )
    used = [
        {"key": key, "value": str(value)}
        for key, value in inputs.model_dump(mode="json").items()
        if key != "pd_by_grade"
    ]
    sections = [
        Section(
            "结果",
            "Results",
            "结果 Results",
            [
                Column("key", "指标代码", "Code", width=30),
                Column("indicator", "指标", "Indicator", width=44),
                Column("amount", "金额（元）", "Amount (yuan)", K.amount),
                Column("count", "笔数", "Count", K.int),
                Column("probability", "概率", "Probability", K.ratio, number_format=PROBABILITY),
            ],
            results,
        ),
        Section(
            "输入",
            "Inputs",
            "输入 Inputs",
            [Column("key", "参数", "Input", width=24), Column("value", "取值", "Value", width=40)],
            used,
        ),
        Section(
            "违约概率",
            "Probability of default by grade",
            "违约概率 PD",
            [
                Column("grade", "等级", "Grade"),
                Column("pd", "违约概率", "PD", K.ratio, number_format=PROBABILITY),
                Column("pd_used", "模拟采用", "PD used", K.ratio, number_format=PROBABILITY),
                Column("source", "来源", "Source"),
                Column("observed_loans", "观察笔数", "Observed loans", K.int),
                Column("defaulted_loans", "违约笔数", "Defaulted loans", K.int),
                Column("observed_rate", "观察违约率", "Observed rate", K.ratio, number_format=PROBABILITY),
            ],
            [
                {
                    "grade": grade,
                    "pd": Decimal(c.pd),
                    "pd_used": Decimal(c.pd_used),
                    "source": c.source,
                    "observed_loans": c.observed_loans,
                    "defaulted_loans": c.defaulted_loans,
                    "observed_rate": None if c.observed_rate is None else Decimal(c.observed_rate),
                }
                for grade, c in run.calibration.pd_by_grade.items()
            ],
        ),
        Section(
            "分银行",
            "By bank",
            "分银行 By bank",
            [
                Column("bank_code", "银行代码", "Bank code"),
                Column("covered_outstanding", "在保余额（元）", "Covered outstanding (yuan)", K.amount),
                Column("loans", "笔数", "Loans", K.int),
                Column("expected_loss", "预期损失（元）", "Expected loss (yuan)", K.amount),
                Column("var_99_contribution", "VaR99贡献（元）", "VaR 99 contribution (yuan)", K.amount),
                Column(
                    "p_bank_breaker",
                    "触发熔断概率",
                    "Probability of its breaker",
                    K.ratio,
                    number_format=PROBABILITY,
                ),
            ],
            [
                {
                    "bank_code": b.bank_code,
                    "covered_outstanding": _fen(b.covered_outstanding),
                    "loans": b.loans,
                    "expected_loss": _fen(b.expected_loss),
                    "var_99_contribution": _fen(b.var_99_contribution),
                    "p_bank_breaker": Decimal(b.p_bank_breaker),
                }
                for b in out.by_bank
            ],
        ),
        Section(
            "损失分布",
            "Loss histogram",
            "损失分布 Losses",
            [
                Column("lower", "损失下限（元）", "From (yuan)", K.amount),
                Column("upper", "损失上限（元）", "To (yuan)", K.amount),
                Column("scenarios", "情景数", "Scenarios", K.int),
                Column("probability", "概率", "Probability", K.ratio, number_format=PROBABILITY),
            ],
            [
                {
                    "lower": _fen(h.lower),
                    "upper": _fen(h.upper),
                    "scenarios": h.scenarios,
                    "probability": Decimal(h.probability),
                }
                for h in out.loss_histogram
            ],
        ),
        Section(
            "基金余额",
            "Fund balance by month (5th, 50th, 95th percentile)",
            "余额 Balance",
            [
                Column("month", "月份", "Month", K.int),
                Column("end", "月末", "Month end", K.date),
                Column("p05", "5%分位（元）", "5th percentile (yuan)", K.amount),
                Column("p50", "中位数（元）", "Median (yuan)", K.amount),
                Column("p95", "95%分位（元）", "95th percentile (yuan)", K.amount),
            ],
            [
                {"month": f.month, "end": f.end, "p05": _fen(f.p05), "p50": _fen(f.p50), "p95": _fen(f.p95)}
                for f in out.balance_fan
            ],
        ),
    ]
    period = (
        f"截至 {inputs.as_of}，未来 {inputs.horizon_months} 个月 / As of {inputs.as_of}, "
        f"{inputs.horizon_months} months ahead · {inputs.scenarios} scenarios, seed {inputs.seed}"
    )
    return Report(f"风险补偿基金压力测试 #{run.id}", run.name, period, run.created_at, sections)


def stress_runs_report(runs: Iterable[StressTestSummary]) -> Report:
    columns = [
        Column("id", "编号", "Id", K.int),
        Column("name", "名称", "Name", width=36),
        Column("preset", "情景", "Preset", width=22),
        Column("as_of", "基准日", "As of", K.date),
        Column("scenarios", "情景数", "Scenarios", K.int),
        Column("seed", "随机种子", "Seed", K.int),
        Column("created_at", "运行时间（UTC）", "Run at (UTC)", width=22),
        Column("created_by", "运行人", "Run by", width=20),
        Column("expected_loss", "预期损失（元）", "Expected loss (yuan)", K.amount),
        Column("var_99", "99%在险价值（元）", "VaR 99 (yuan)", K.amount),
        Column(
            "p_exhaustion", "基金耗尽概率", "Probability of exhaustion", K.ratio, number_format=PROBABILITY
        ),
    ]
    rows = (
        {
            "id": r.id,
            "name": r.name,
            "preset": r.preset.value,
            "as_of": r.as_of,
            "scenarios": r.scenarios,
            "seed": r.seed,
            "created_at": r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "created_by": r.created_by,
            "expected_loss": _fen(r.expected_loss),
            "var_99": _fen(r.var_99),
            "p_exhaustion": Decimal(r.p_exhaustion),
        }
        for r in runs
    )
    section = Section("压力测试", "Stress tests", "压力测试 Runs", columns, rows)
    return Report("风险补偿基金压力测试记录", "Stress test runs", "全部 / All", now(), [section])


# --- ratings ----------------------------------------------------------------------------------------------


def _ratio(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def ratings_report(ratings: Sequence[BankRatingRead], title_period: str, bank_note: str = "") -> Report:
    """One row per bank and month, then one per measure (with the loans behind it)."""
    labels = {m.key: (m.label_zh, m.label_en) for r in ratings for m in r.measures}
    summary_columns = [
        Column("month", "月份", "Month"),
        Column("bank_code", "银行代码", "Bank code"),
        Column("bank_name", "银行名称", "Bank", width=26),
        Column("rating", "评级", "Rating", K.int),
        Column("score", "综合得分", "Score", K.ratio, number_format="0.00"),
        Column("driver", "主要因素", "Driver", width=22),
        Column("reason", "说明", "Reason", width=60),
        *(
            Column(key, labels.get(key, (key, key))[0], labels.get(key, (key, key))[1], K.ratio)
            for key in RATING_MEASURES
        ),
    ]
    summary_rows = [
        {
            "month": r.month,
            "bank_code": r.bank_code,
            "bank_name": r.bank_name,
            "rating": r.rating,
            "score": Decimal(r.score),
            "driver": r.driver,
            "reason": r.reason,
            **{m.key: _ratio(m.value) for m in r.measures},
        }
        for r in ratings
    ]
    detail_rows: list[dict[str, Any]] = [
        {
            "month": r.month,
            "bank_code": r.bank_code,
            "measure": f"{m.label_zh} / {m.label_en}",
            "value": _ratio(m.value),
            "numerator": m.numerator,
            "denominator": m.denominator,
            "percentile": _ratio(m.percentile),
            "peer_score": _ratio(m.peer_score),
            "threshold_score": m.threshold_score,
            "score": _ratio(m.score),
            "weight": _ratio(m.weight),
            "loan_count": m.loan_count,
            "loans": " ".join(loan.bank_loan_ref for loan in m.loans)
            or " ".join(f"{x.month_end}:{x.status}" for x in m.months),
        }
        for r in ratings
        for m in r.measures
    ]
    sections = [
        Section("银行风险评级", "Bank risk ratings", "评级 Ratings", summary_columns, summary_rows),
        Section(
            "评级指标",
            "Measures",
            "指标 Measures",
            [
                Column("month", "月份", "Month"),
                Column("bank_code", "银行代码", "Bank code"),
                Column("measure", "指标", "Measure", width=36),
                Column("value", "取值", "Value", K.ratio),
                Column("numerator", "分子", "Numerator", width=16),
                Column("denominator", "分母", "Denominator", width=16),
                Column("percentile", "同业百分位", "Peer percentile", K.ratio),
                Column("peer_score", "同业得分", "Peer score", K.ratio, number_format="0.00"),
                Column("threshold_score", "阈值得分", "Threshold score", K.int),
                Column("score", "指标得分", "Score", K.ratio, number_format="0.00"),
                Column("weight", "权重", "Weight", K.ratio),
                Column("loan_count", "相关贷款笔数", "Loans behind it", K.int),
                Column("loans", "相关贷款 / 月份", "Loans (references) or months", width=60),
            ],
            detail_rows,
        ),
    ]
    return Report("合作银行风险评级", "Partner bank risk ratings", title_period + bank_note, now(), sections)


def month_stem(month: date | None) -> str:
    return "银行风险评级" if month is None else f"银行风险评级-{month:%Y-%m}"
