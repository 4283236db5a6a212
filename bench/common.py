"""What every benchmark shares: the profile, throw-away PostgreSQL databases, a server subprocess with
its memory high-water mark, and the one-line result format.

Benchmarks print ratios measured in one run against a baseline on the same machine (timings on a
shared machine are noisy; ratios much less so) and the absolute figures beside them. They never assert
on time; they print PASS/MISS against the bar and append their figures to `bench/results/*.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PROFILE = os.environ.get("BENCH_PROFILE", "quick")
if PROFILE not in ("quick", "full"):
    raise SystemExit(f"BENCH_PROFILE must be quick or full, not {PROFILE!r}")
FULL = PROFILE == "full"
ADMIN_URL = os.environ.get(
    "LOANFUND_BENCH_POSTGRES_URL",
    os.environ.get("LOANFUND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)


def scaled(quick: int, full: int) -> int:
    """`quick` in the quick profile, `full` in the full one; BENCH_SCALE (a float) multiplies both."""
    factor = float(os.environ.get("BENCH_SCALE", "1"))
    return max(1, round((full if FULL else quick) * factor))


# --- databases ----------------------------------------------------------------------------------------


def database_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def libpq_url(sqlalchemy_url: str) -> str:
    """The same URL for psycopg itself (no `+psycopg` driver suffix)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(name: str) -> str:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return database_url(name)


def drop_database(name: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migrate(url: str) -> None:
    """`loanfund db upgrade` against `url`, as an operator would run it."""
    run_cli(url, "db", "upgrade")


def run_cli(url: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "loanfund.cli", *args],
        env=server_env(url),
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


@contextlib.contextmanager
def fresh_database(label: str, *, keep: bool = False) -> Iterator[str]:
    """A new, migrated database `loanfund_bench_<label>_<random>`, dropped afterwards."""
    name = f"loanfund_bench_{label}_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        migrate(url)
        yield url
    finally:
        if not keep:
            drop_database(name)


# --- the server -------------------------------------------------------------------------------------------


def server_env(url: str, **extra: str) -> dict[str, str]:
    src = str(ROOT / "src")
    path = os.environ.get("PYTHONPATH", "")
    env = {
        **os.environ,
        "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src,
        "LOANFUND_ENV": "dev",
        "LOANFUND_DATABASE_URL": url,
        "LOANFUND_PROJECT_ROOT": str(ROOT),
        "LOANFUND_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB, from /proc."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


@dataclass
class Server:
    """A server subprocess: `loanfund serve` (default) or any command that serves an app on `port`."""

    url: str
    command: Sequence[str] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = list(self.command or ["-m", "loanfund.cli", "serve", "--workers", "1"])
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        fd, log = tempfile.mkstemp(prefix="loanfund-bench-", suffix=".log")
        self.log_path = Path(log)
        self.proc = subprocess.Popen(
            [sys.executable, *cmd],
            env=server_env(self.url, **self.extra_env),
            cwd=ROOT,
            stdout=fd,
            stderr=fd,
        )
        os.close(fd)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not become ready in 60 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory_mib(self) -> dict[str, float]:
        return {k: v / 1024 for k, v in memory_kib(self.pid).items()}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- reporting ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def header(title: str) -> None:
    print(f"\n== {title} [profile {PROFILE}] ==", flush=True)


def line(label: str, text_: str) -> None:
    print(f"  {label:<34} {text_}", flush=True)


def save(name: str, figures: Mapping[str, Any]) -> None:
    """Keep the figures of the last run of this benchmark and profile in bench/results/."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"profile": PROFILE, "at": time.strftime("%Y-%m-%d %H:%M:%S %z"), **figures}
    (RESULTS / f"{name}-{PROFILE}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
