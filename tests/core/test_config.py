import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from loanfund.core.config import ConfigurationError, Settings


def test_prod_refuses_default_secret() -> None:
    s = Settings(env="prod", database_url="postgresql+psycopg://x@h/db")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        s.check_production()


def test_prod_refuses_sqlite_unless_allowed() -> None:
    secret = SecretStr("s" * 40)
    with pytest.raises(ConfigurationError, match="SQLite"):
        Settings(env="prod", secret_key=secret).check_production()
    Settings(env="prod", secret_key=secret, allow_sqlite_in_prod=True).check_production()


def test_dev_accepts_defaults() -> None:
    Settings(env="dev").check_production()


def test_business_rules_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANFUND_LEVERAGE_CAP", "8")
    monkeypatch.setenv("LOANFUND_NPL_DAYS", "60")
    s = Settings()
    assert str(s.leverage_cap) == "8"
    assert s.npl_days == 60


def test_inconsistent_breaker_thresholds_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(breaker_warning_ratio="0.09", breaker_suspend_ratio="0.08")


def test_threadpool_size_is_applied_at_startup(settings: Settings, engine: Engine) -> None:
    from anyio import to_thread
    from fastapi.testclient import TestClient

    from loanfund.app import create_app

    app = create_app(settings.model_copy(update={"threadpool_size": 7}), engine)
    with TestClient(app) as client:
        assert client.portal is not None
        assert client.portal.call(lambda: to_thread.current_default_thread_limiter().total_tokens) == 7
