"""The app tunes the garbage collector at startup (`app.tune_gc`), unless told not to (0)."""

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from loanfund.app import create_app
from loanfund.core.config import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_startup_freezes_and_raises_the_young_threshold(settings: Settings) -> None:
    gc.unfreeze()
    app = create_app(settings.model_copy(update={"gc_gen0_threshold": 12_345}))
    with TestClient(app):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restore_gc")
def test_zero_leaves_the_collector_alone(settings: Settings) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    with TestClient(create_app(settings.model_copy(update={"gc_gen0_threshold": 0}))):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
