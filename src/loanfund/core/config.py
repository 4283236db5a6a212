"""Settings: one class, `LOANFUND_` prefix, loaded once per process.

Every business rule that DOMAIN.md marks as *(default)* lives here so the bureau can change it
without a code change. Dated tables (LPR, credit lines by grade) are database rows instead.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET = "dev-only-secret-change-me"


class IndicatorWeight(BaseModel):
    """Points per unit of an indicator, capped at `cap` points."""

    per_unit: Decimal
    cap: Decimal


def _default_weights() -> dict[str, IndicatorWeight]:
    w = IndicatorWeight
    return {
        # counts
        "invention_patents": w(per_unit=Decimal("6"), cap=Decimal("30")),
        "utility_model_patents": w(per_unit=Decimal("2"), cap=Decimal("10")),
        "software_copyrights": w(per_unit=Decimal("2"), cap=Decimal("10")),
        # R&D spending as a percentage of revenue: points per percentage point
        "rd_intensity_pct": w(per_unit=Decimal("4"), cap=Decimal("20")),
        # R&D staff as a percentage of all staff: points per percentage point
        "rd_staff_pct": w(per_unit=Decimal("0.5"), cap=Decimal("10")),
        "senior_talent": w(per_unit=Decimal("2.5"), cap=Decimal("10")),
        # yes/no
        "high_tech_certificate": w(per_unit=Decimal("10"), cap=Decimal("10")),
    }


class RatingMeasure(BaseModel):
    """A bank-rating measure's weight in the composite and its four cut points: a value below the first
    scores 1, below the second 2, below the third 3, below the fourth 4, otherwise 5 (higher is worse)."""

    weight: Decimal = Field(ge=0)
    thresholds: list[Decimal] = Field(min_length=4, max_length=4)


RATING_MEASURES = (
    "npl_ratio",
    "compensation_rate",
    "early_default_rate",
    "report_discrepancies",
    "report_lateness",
    "growth",
    "concentration",
)


def _default_rating_measures() -> dict[str, RatingMeasure]:
    def m(weight: str, *cuts: str) -> RatingMeasure:
        return RatingMeasure(weight=Decimal(weight), thresholds=[Decimal(c) for c in cuts])

    return {
        # (non-performing + compensated) ÷ (covered + compensated) at the month's end
        "npl_ratio": m("0.25", "0.01", "0.02", "0.05", "0.08"),
        # compensation paid in the window ÷ average covered outstanding at its month ends
        "compensation_rate": m("0.20", "0.005", "0.01", "0.02", "0.04"),
        # loans non-performing within `early_default_months` of first disbursement ÷ loans disbursed
        "early_default_rate": m("0.15", "0.01", "0.02", "0.04", "0.08"),
        # discrepancies per loan line of the status reports due in the window
        "report_discrepancies": m("0.10", "0.005", "0.01", "0.02", "0.05"),
        # status reports due in the window that came late or not at all (months)
        "report_lateness": m("0.05", "1", "2", "3", "4"),
        # covered outstanding at the month's end ÷ a window earlier, less one
        "growth": m("0.10", "0.25", "0.50", "1.00", "2.00"),
        # industry Herfindahl–Hirschman index of covered outstanding at the month's end
        "concentration": m("0.15", "0.20", "0.30", "0.45", "0.60"),
    }


def _default_bands() -> dict[str, Decimal]:
    return {"A": Decimal(85), "B": Decimal(75), "C": Decimal(65), "D": Decimal(55), "E": Decimal(45)}


def _default_retry_schedule() -> list[float]:
    # 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h, 18 h, 24 h: 2.9 days in all
    return [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 43_200, 64_800, 86_400]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANFUND_", env_file=".env", extra="ignore")

    # --- runtime -------------------------------------------------------------------------------
    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = "sqlite:///./loanfund.db"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    allow_sqlite_in_prod: bool = False
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_connect_timeout_s: int = Field(default=5, ge=1)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    log_level: str = "INFO"
    log_json: bool = True
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    page_size_default: int = Field(default=50, ge=1)
    page_size_max: int = Field(default=500, ge=1)
    public_rate_limit_per_minute: int = Field(default=30, ge=1)
    redis_url: str | None = Field(
        default=None,
        description="Redis for limits shared by every process and host (redis://host:6379/0); "
        "unset: each process keeps its own counters",
    )
    redis_key_prefix: str = Field(default="loanfund", min_length=1, max_length=64)
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    batch_max_items: int = Field(default=5000, ge=1)
    # concurrent single repayments / delinquency reports written in one transaction (core/group_commit.py)
    group_commit_max_items: int = Field(default=64, ge=1, le=1000)
    group_commit_leaders: int = Field(default=1, ge=1, le=16)
    key_touch_interval_s: int = Field(default=60, ge=0)
    # a verified key is remembered this long per process (0: ask the database on every request)
    key_cache_s: float = Field(default=1.0, ge=0, le=60)
    threadpool_size: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Threads for the sync endpoints, per worker; default anyio's 40",
    )
    gc_gen0_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Allocations between collections of the youngest generation, with what exists at "
        "startup frozen (app.tune_gc); 0 leaves Python's collector as it is",
    )

    # --- the bureau, as the public pages name it ----------------------------------------------
    bureau_name: str = "重庆市黔江区科学技术局"
    bureau_contact_phone: str = "023-0000 0000"
    bureau_contact_email: str = "kjj@example.gov.cn"
    bureau_contact_address: str = "重庆市黔江区（示例地址）"
    bureau_contact_hours: str = "工作日 9:00–12:00、14:00–17:30"
    # what the portal tells an applicant to expect (working days)
    portal_bank_decision_days: int = Field(default=10, ge=1, le=90)
    portal_disbursement_days: int = Field(default=5, ge=1, le=90)

    # --- business rules (DOMAIN.md "defaults") ----------------------------------------------
    default_fund_share: Decimal = Field(default=Decimal("0.80"), gt=0, le=1)
    rate_cap_bp: int = Field(default=150, ge=0, description="Max annual rate = one-year LPR + this")
    max_term_months: int = Field(default=12, ge=1)
    leverage_cap: Decimal = Field(default=Decimal("10"), gt=0)
    npl_days: int = Field(default=90, ge=1)
    early_default_months: int = Field(
        default=6,
        ge=0,
        description="A loan non-performing within this many months of its first "
        "disbursement is an early default: its claim needs an officer's review note",
    )
    aging_bucket_days: list[int] = Field(
        default_factory=lambda: [30, 60, 90],
        description="Upper bounds of the aging buckets in days past due (1–30, 31–60, 61–90, over 90)",
    )
    claim_window_days: int = Field(default=180, ge=1)
    breaker_warning_ratio: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)
    breaker_suspend_ratio: Decimal = Field(default=Decimal("0.08"), gt=0, lt=1)
    annual_compensation_stop_ratio: Decimal = Field(default=Decimal("0.50"), gt=0)
    evaluation_weights: dict[str, IndicatorWeight] = Field(default_factory=_default_weights)
    grade_bands: dict[str, Decimal] = Field(default_factory=_default_bands)
    benchmark_rate_before_lpr: Decimal = Field(default=Decimal("4.35"))
    timezone: str = "Asia/Shanghai"
    status_token_failure_limit: int = Field(
        default=10, ge=1, description="Wrong status tokens one address may present per window"
    )
    status_token_failure_window_s: int = Field(default=600, ge=1)

    # --- risk analytics (risk/): stress test calibration and bank ratings ---------------------------
    stress_pd_floor: Decimal = Field(
        default=Decimal("0.01"), ge=0, le=1, description="Lowest probability of default a grade is given"
    )
    stress_pd_min_loans: int = Field(
        default=20,
        ge=1,
        description="A grade with fewer loans observed to the end of their lives takes "
        "the programme-wide default rate",
    )
    stress_lgd_floor: Decimal = Field(
        default=Decimal("0.45"), ge=0, le=1, description="Lowest loss given default the calibration gives"
    )
    rating_window_months: int = Field(default=12, ge=1, le=60)
    rating_report_due_days: int = Field(
        default=15, ge=0, le=27, description="Days after a month's end its status report is due"
    )
    rating_peer_weight: Decimal = Field(
        default=Decimal("0.5"),
        ge=0,
        le=1,
        description="Share of a measure's score from the peer percentile (the rest from the thresholds)",
    )
    rating_measures: dict[str, RatingMeasure] = Field(default_factory=_default_rating_measures)
    rating_bands: list[Decimal] = Field(
        default_factory=lambda: [Decimal("1.75"), Decimal("2.50"), Decimal("3.00"), Decimal("4.00")],
        description="Composite scores (1–5) from which a bank is rated 2, 3, 4 and 5",
    )

    # --- the bureau console: staff sign-in (staff/signin.py) ----------------------------------------
    console_idle_timeout_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A console session ends after this long without a request"
    )
    console_session_max_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="A console session ends this long after sign-in, in use or not",
    )
    console_password_min_length: int = Field(default=12, ge=8, le=128)
    console_signin_failures_per_login: int = Field(
        default=5, ge=1, description="Failed sign-ins one login may have in the window before a wait"
    )
    console_signin_failures_per_address: int = Field(
        default=20, ge=1, description="Failed sign-ins one address may have in the window before a wait"
    )
    console_signin_failure_window_s: int = Field(default=900, ge=1)
    console_totp_roles: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Roles that must sign in with a one-time code; default none in dev and test, "
        "approver and admin in prod",
    )

    # --- webhooks (webhooks/, `loanfund worker`) ------------------------------------------------------
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=_default_retry_schedule,
        min_length=1,
        description="Seconds to wait after each failed attempt before the next (±jitter); once they are "
        "used up the delivery fails. The default spreads 13 attempts over about three days",
    )
    webhook_retry_jitter: float = Field(
        default=0.2, ge=0, lt=1, description="Each wait is scaled by a random factor in 1 ± this"
    )
    webhook_retry_after_max_s: float = Field(
        default=86_400, gt=0, description="The longest Retry-After (429/503) honoured"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300, description="Per attempt")
    webhook_response_max_bytes: int = Field(
        default=4096, ge=0, le=1_048_576, description="Bytes of a response read (and kept in the log)"
    )
    webhook_claim_lease_s: float = Field(
        default=120.0,
        gt=0,
        description="How long a claimed delivery is a worker's before another may take it over (a "
        "worker that died); must comfortably exceed the timeout",
    )
    webhook_disable_after_days: float = Field(
        default=5.0, gt=0, description="An endpoint whose deliveries have failed this long is disabled"
    )
    webhook_secret_overlap_hours: float = Field(
        default=24.0, ge=0, description="How long a rotated secret still signs, beside the new one"
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Deliver to private, loopback and link-local addresses (an endpoint on the "
        "bank's own network; tests)",
    )
    webhook_worker_concurrency: int = Field(default=8, ge=1, le=256, description="Sends in flight")
    webhook_poll_interval_s: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for due deliveries"
    )
    webhook_max_endpoints_per_bank: int = Field(default=10, ge=1)
    webhook_retention_days: int = Field(
        default=30, ge=1, description="Finished deliveries kept this long (`loanfund webhooks purge`)"
    )

    @model_validator(mode="after")
    def _bands_are_ordered(self) -> Settings:
        if self.breaker_warning_ratio > self.breaker_suspend_ratio:
            raise ValueError("breaker_warning_ratio must not exceed breaker_suspend_ratio")
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        bounds = self.aging_bucket_days
        if not bounds or bounds[0] < 1 or any(b <= a for a, b in pairwise(bounds)):
            raise ValueError("aging_bucket_days must be positive and strictly increasing")
        if any(s < 0 for s in self.webhook_retry_schedule_s):
            raise ValueError("webhook_retry_schedule_s must not be negative")
        if self.webhook_claim_lease_s <= self.webhook_timeout_s:
            raise ValueError("webhook_claim_lease_s must exceed webhook_timeout_s")
        return self

    @model_validator(mode="after")
    def _evaluation_is_consistent(self) -> Settings:
        """The score stays within 0–100 and every indicator and grade has its parameter."""
        known = set(_default_weights())
        if set(self.evaluation_weights) != known:
            raise ValueError(f"evaluation_weights needs exactly the indicators {sorted(known)}")
        if any(w.per_unit < 0 or w.cap < 0 for w in self.evaluation_weights.values()):
            raise ValueError("evaluation_weights must not be negative")
        if sum(w.cap for w in self.evaluation_weights.values()) > 100:
            raise ValueError("the caps of evaluation_weights must add up to at most 100")
        if sorted(self.grade_bands) != ["A", "B", "C", "D", "E"]:
            raise ValueError("grade_bands needs a threshold for each grade A–E")
        thresholds = [self.grade_bands[g] for g in "ABCDE"]
        if thresholds != sorted(thresholds, reverse=True) or len(set(thresholds)) != 5:
            raise ValueError("grade_bands must fall strictly from A to E")
        if not all(0 <= t <= 100 for t in thresholds):
            raise ValueError("grade_bands must lie within 0–100")
        return self

    @field_validator("console_totp_roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        """`approver,admin` (or a JSON list) from the environment; an empty string names no role."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _totp_roles_are_roles(self) -> Settings:
        known = {"analyst", "officer", "approver", "admin"}
        if self.console_totp_roles is not None and not set(self.console_totp_roles) <= known:
            raise ValueError(f"console_totp_roles may only name the roles {sorted(known)}")
        return self

    @property
    def totp_roles(self) -> frozenset[str]:
        """The roles that must use a one-time code (`console_totp_roles`, or the default for `env`)."""
        if self.console_totp_roles is not None:
            return frozenset(self.console_totp_roles)
        return frozenset({"approver", "admin"}) if self.env == "prod" else frozenset()

    @property
    def secure_cookies(self) -> bool:
        """Console cookies are `Secure` (sent over HTTPS only) in production."""
        return self.env == "prod"

    @model_validator(mode="after")
    def _ratings_are_consistent(self) -> Settings:
        if set(self.rating_measures) != set(RATING_MEASURES):
            raise ValueError(f"rating_measures needs exactly the measures {list(RATING_MEASURES)}")
        for name, m in self.rating_measures.items():
            if any(b <= a for a, b in pairwise(m.thresholds)):
                raise ValueError(f"rating_measures.{name}.thresholds must be strictly increasing")
        if not any(m.weight for m in self.rating_measures.values()):
            raise ValueError("rating_measures needs a positive weight")
        bands = self.rating_bands
        if len(bands) != 4 or any(b <= a for a, b in pairwise(bands)) or not 1 < bands[0] <= bands[3] < 5:
            raise ValueError("rating_bands must be four strictly increasing scores between 1 and 5")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse to run in prod with a default secret or (unless allowed) a SQLite database."""
        if self.env != "prod":
            return
        problems = []
        if (
            self.secret_key.get_secret_value() == DEFAULT_SECRET
            or len(self.secret_key.get_secret_value()) < 32
        ):
            problems.append("LOANFUND_SECRET_KEY must be set to a random value of at least 32 characters")
        if self.is_sqlite and not self.allow_sqlite_in_prod:
            problems.append(
                "LOANFUND_DATABASE_URL points at SQLite; set LOANFUND_ALLOW_SQLITE_IN_PROD=true to allow"
            )
        if problems:
            raise ConfigurationError("; ".join(problems))


class ConfigurationError(RuntimeError):
    pass


@lru_cache
def get_settings() -> Settings:
    return Settings()
