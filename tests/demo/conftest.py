"""The demo data set, seeded once per module into a fresh database of the suite's backend with the
`loanfund demo` command, as `make run` does; committed data, dropped afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from loanfund.cli import app as cli
from loanfund.core.config import Settings, get_settings
from loanfund.core.db import make_engine
from tests.databases import fresh_database

runner = CliRunner()


@contextmanager
def cli_env(url: str) -> Iterator[None]:
    """The `loanfund` command pointed at `url`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOANFUND_DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


def invoke(*args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@dataclass
class Demo:
    url: str
    settings: Settings
    engine: Engine
    keys: dict[str, str]
    keys_file: Path
    seconds: float


@pytest.fixture(scope="module")
def demo(backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    directory = tmp_path_factory.mktemp("demo")
    with fresh_database(backend, database_url, directory) as url, cli_env(url):
        invoke("db", "upgrade")
        keys_file = directory / "keys.json"
        started = time.perf_counter()
        invoke("demo", "--keys-file", str(keys_file))
        seconds = time.perf_counter() - started
        settings = get_settings()
        engine = make_engine(settings)
        try:
            yield Demo(url, settings, engine, json.loads(keys_file.read_text()), keys_file, seconds)
        finally:
            engine.dispose()
