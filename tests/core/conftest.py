import pytest


@pytest.fixture
def settings_url_fresh(fresh_database: str) -> str:
    """A fresh empty database on the same backend."""
    return fresh_database
