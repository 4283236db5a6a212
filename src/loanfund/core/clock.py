"""Business dates: the calendar day where the programme runs (Asia/Shanghai by default)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from loanfund.core.config import Settings


def business_today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.timezone)).date()
