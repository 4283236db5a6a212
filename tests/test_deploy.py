"""The commands docker-compose runs (migrate, then serve in prod mode) work against the test database."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prod_serve_refuses_default_secret(database_url: str) -> None:
    env = {**os.environ, "LOANFUND_ENV": "prod", "LOANFUND_DATABASE_URL": database_url}
    env.pop("LOANFUND_SECRET_KEY", None)
    r = subprocess.run(
        [sys.executable, "-m", "loanfund.cli", "serve", "--port", str(_free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "LOANFUND_SECRET_KEY" in r.stderr


def test_migrate_then_serve_like_the_container(database_url: str, engine: object) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "LOANFUND_ENV": "prod",
        "LOANFUND_DATABASE_URL": database_url,
        "LOANFUND_SECRET_KEY": "k" * 48,
        "LOANFUND_ALLOW_SQLITE_IN_PROD": "true",
    }
    up = subprocess.run(
        [sys.executable, "-m", "loanfund.cli", "db", "upgrade"], env=env, cwd=ROOT, timeout=120
    )
    assert up.returncode == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loanfund.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("server did not start")
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_worker_command_of_the_container(database_url: str, engine: object) -> None:
    """The compose file's `worker` service runs `loanfund worker`: in prod mode it starts, delivers what
    is due (nothing here) and, given --once, exits cleanly; with a default secret it refuses to start."""
    env = {
        **os.environ,
        "LOANFUND_ENV": "prod",
        "LOANFUND_DATABASE_URL": database_url,
        "LOANFUND_SECRET_KEY": "k" * 48,
        "LOANFUND_ALLOW_SQLITE_IN_PROD": "true",
    }
    command = [sys.executable, "-m", "loanfund.cli", "worker", "--once"]
    r = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0 deliveries attempted"
    env.pop("LOANFUND_SECRET_KEY")
    r = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "LOANFUND_SECRET_KEY" in r.stderr
    compose = (ROOT / "docker-compose.yml").read_text()
    assert 'command: ["loanfund", "worker"]' in compose
