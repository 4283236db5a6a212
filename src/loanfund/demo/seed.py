"""Deterministic demonstration data, created through the same services as live data.

The registry reproduces the seed district (Qianjiang, Chongqing, end of 2021): 398 registered
technology-based enterprises (48 of them registered in 2021) and 41 high-tech enterprises (15 certified
in 2021), plus a few unregistered enterprises so that ineligible applications can be shown. Then the
programme's history from 2017 to the end of 2021 — the fund, the loans, their events, applications,
claims, status reports — is planned (`plan.py`, which fixes the seed document's figures) and replayed
through the services (`history.py`). Everything comes from one `random.Random(seed)`.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine, func, select

from loanfund.audit.service import Actor
from loanfund.banks import service as bank_service
from loanfund.banks.models import Bank
from loanfund.core.config import Settings
from loanfund.core.session import transaction
from loanfund.demo import history, plan, work
from loanfund.enterprises import service as enterprise_service
from loanfund.enterprises.credit_code import ALPHABET, with_check_character
from loanfund.enterprises.schemas import EnterpriseCreate
from loanfund.rates import service as rates
from loanfund.rules import add_months
from loanfund.staff import service as staff_service
from loanfund.staff.models import Role

DEMO = Actor(kind="system", id=None, name="demo")
REGION = "500114"  # Qianjiang District, Chongqing

TECH_ENTERPRISES = 398
TECH_NEW_IN_2021 = 48
HIGH_TECH = 41
HIGH_TECH_NEW_IN_2021 = 15
UNREGISTERED = 6

BANKS = [
    ("CQRCB_QJ", "重庆农村商业银行黔江支行", Decimal("0.80")),
    ("CCB_QJ", "中国建设银行黔江支行", Decimal("0.80")),
    ("ICBC_QJ", "中国工商银行黔江支行", Decimal("0.80")),
    ("CQTGB_QJ", "重庆三峡银行黔江支行", Decimal("0.80")),
]
STAFF = [
    ("王分析", Role.analyst),
    ("李经办", Role.officer),
    ("张审批", Role.approver),
    ("赵复核", Role.approver),
    ("陈管理", Role.admin),
]
_INDUSTRIES = ["C"] * 10 + ["I"] * 5 + ["M"] * 4 + ["A"] * 3 + ["E", "F", "L", "N", "O", "R"]
_WORDS = [
    "武陵",
    "阿蓬",
    "濯水",
    "正阳",
    "城西",
    "舟白",
    "太极",
    "石会",
    "金溪",
    "黎水",
    "仰头",
    "灵峰",
    "鸿程",
    "科瑞",
    "金顺",
    "双河",
    "安信",
    "易智",
    "渝东",
    "南海",
    "云帆",
    "青禾",
    "睿拓",
    "华景",
]
_TRADES = {
    "C": ["制药", "食品", "玻璃", "丝绸", "机械", "新材料", "电子"],
    "I": ["软件", "信息技术", "数据科技", "网络科技"],
    "M": ["检测", "生物科技", "技术研究", "设计"],
    "A": ["农业科技", "茶业", "中药材", "蚕桑"],
}


class DatabaseNotEmpty(RuntimeError):
    pass


def _credit_code(rng: random.Random, used: set[str]) -> str:
    while True:
        body = "91" + REGION + "".join(rng.choice(ALPHABET) for _ in range(9))
        code = with_check_character(body)
        if code not in used:
            used.add(code)
            return code


def _name(rng: random.Random, industry: str, used: set[str]) -> str:
    trades = _TRADES.get(industry, ["科技", "服务"])
    while True:
        name = f"重庆{rng.choice(_WORDS)}{rng.choice(_WORDS)}{rng.choice(trades)}有限公司"
        if name not in used:
            used.add(name)
            return name


def enterprise_rows(rng: random.Random) -> list[EnterpriseCreate]:
    codes: set[str] = set()
    names: set[str] = set()
    rows: list[EnterpriseCreate] = []
    high_tech_slots = set(rng.sample(range(TECH_ENTERPRISES), HIGH_TECH))
    new_high_tech = set(rng.sample(sorted(high_tech_slots), HIGH_TECH_NEW_IN_2021))
    for i in range(TECH_ENTERPRISES + UNREGISTERED):
        industry = rng.choice(_INDUSTRIES)
        registered = i < TECH_ENTERPRISES
        if registered:
            year = 2021 if i >= TECH_ENTERPRISES - TECH_NEW_IN_2021 else rng.randint(2017, 2020)
            reg_date: date | None = date(year, 1, 1) + timedelta(days=rng.randint(0, 360))
            reg_no: str | None = f"{year}500114{i + 1:05d}"
        else:
            reg_date, reg_no = None, None
        cert_no, cert_expiry = None, None
        if i in high_tech_slots:
            issued = (
                date(2021, 1, 1) + timedelta(days=rng.randint(0, 330))
                if i in new_high_tech
                else (date(rng.randint(2019, 2020), 1, 1) + timedelta(days=rng.randint(0, 330)))
            )
            cert_no = f"GR{issued.year}5110{i + 1:04d}"
            cert_expiry = add_months(issued, 36) - timedelta(days=1)
        rows.append(
            EnterpriseCreate(
                credit_code=_credit_code(rng, codes),
                name=_name(rng, industry, names),
                industry=industry,
                tech_reg_no=reg_no,
                tech_reg_date=reg_date,
                high_tech_cert_no=cert_no,
                high_tech_cert_expiry=cert_expiry,
                headcount=rng.randint(8, 400),
            )
        )
    return rows


def seed_demo(engine: Engine, settings: Settings, *, seed: int = 2021) -> dict[str, str]:
    """Seed an empty database; return the demo keys by who holds them."""
    rng = random.Random(seed)
    keys: dict[str, str] = {}
    with transaction(engine) as session:
        if session.scalar(select(func.count()).select_from(Bank)):
            raise DatabaseNotEmpty("the database already has banks; demo data goes into an empty database")
        staff_ids: dict[str, tuple[int, str]] = {}
        for name, role in STAFF:
            staff = staff_service.create_staff(session, DEMO, name=name, role=role)
            staff_ids.setdefault(role.value, (staff.id, name))
            keys[f"staff {role.value} {name}"] = staff_service.issue_key(
                session, settings, DEMO, staff=staff, label="demo"
            ).secret
        bank_ids: dict[str, int] = {}
        for code, name, share in BANKS:
            # the history holds loans from before the application process: imported as historical contracts
            bank = bank_service.create_bank(
                session,
                DEMO,
                code=code,
                name=name,
                fund_share=share,
                allow_contracts_without_application=True,
            )
            bank_ids[code] = bank.id
            keys[f"bank {code}"] = staff_service.issue_key(
                session, settings, DEMO, bank=bank, label="demo"
            ).secret
        rows = enterprise_rows(rng)
        for row in rows:
            enterprise_service.create_enterprise(session, DEMO, row)
        # the dated tables as they are in the database, for the plan to keep within
        lpr_table = sorted((r.effective_date, r.rate_pct) for r in rates.list_lpr(session))
        line_tables = sorted(rates.list_credit_line_tables(session).items())

    def lpr(day: date) -> Decimal:
        return [rate for since, rate in lpr_table if since <= day][-1]

    def lines_on(day: date) -> dict[str, int]:
        return [table for since, table in line_tables if since <= day][-1]

    history_plan = plan.plan_history(rng, settings, rows, lpr, lines_on)
    cast = history.Cast(
        banks=bank_ids, officer=staff_ids[Role.officer.value], approver=staff_ids[Role.approver.value]
    )
    history.replay(engine, settings, history_plan, cast)
    work.leave_work(
        engine, settings, approver=staff_ids[Role.approver.value], analyst=staff_ids[Role.analyst.value]
    )
    return keys
