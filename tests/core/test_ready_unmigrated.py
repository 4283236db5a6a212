from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from loanfund.app import create_app
from loanfund.core.config import Settings


def test_readyz_is_503_on_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(
        env="test", database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key=SecretStr("x" * 40)
    )
    app = create_app(settings)
    with TestClient(app) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["revision"] is None
    app.state.engine.dispose()
