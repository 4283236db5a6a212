"""Webhook delivery: throughput of one worker to a local receiver, and latency from commit to delivery.

    python -m bench.webhooks                     # quick: 3,000 events; 300 for latency
    BENCH_PROFILE=full python -m bench.webhooks  # 20,000 events; 1,500 for latency

One `loanfund worker` process (the default 8 messages in flight) on a fresh PostgreSQL database, one
bank with one endpoint: a receiver on 127.0.0.1 (asyncio, keep-alive, answers 200 at once) in this
process.

- Throughput: N events committed in one transaction while the worker idles; events per second from
  the commit to the last arrival. Baseline: the same N bodies, signed the same way, POSTed by 8
  threads over one httpx client with no database at all, from a process of its own like the
  worker — the HTTP part of the work alone; measured before and after, averaged.
  Bar: worker ÷ baseline ≥ 0.25 (claiming and recording every attempt costs two short transactions
  per batch of up to 8).
- Latency: events committed one per transaction at a steady rate while the worker runs; from the
  commit returning to the receiver reading the message. The worker is woken by the commit's NOTIFY,
  not by its poll (LOANFUND_WEBHOOK_POLL_INTERVAL_S, 1 s). Bar: p99 ≤ 0.5 × the poll interval.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
from pydantic import SecretStr

from bench import common
from loanfund.audit.service import SYSTEM
from loanfund.banks import service as bank_service
from loanfund.core.config import Settings
from loanfund.core.db import make_engine, utcnow
from loanfund.core.session import transaction
from loanfund.webhooks import outbox, signing
from loanfund.webhooks import service as webhook_service
from loanfund.webhooks.schemas import EndpointCreate

SECRET = "bench-webhooks-" + "k" * 40
CONCURRENCY = 8
THROUGHPUT_BAR = 0.25
LATENCY_BAR = 0.5  # p99 ÷ poll interval


class Receiver:
    """Counts messages and when each `data.n` arrived (monotonic)."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.count = 0
        self.last = 0.0
        self.ready = threading.Event()
        self.port = common.free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.last = time.monotonic()
                n = json.loads(body)["data"].get("n")
                if n is not None:
                    self.arrivals[n] = self.last
                self.count += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def wait_for(self, count: int, timeout: float) -> float:
        """Seconds until `count` messages have arrived in all (monotonic time of the last)."""
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.count} of {count} messages arrived in {timeout:.0f} s")
            time.sleep(0.005)
        return self.last


def raw_baseline(url: str, events: int, secret: str) -> float:
    """Events/s of the same signed POSTs with no database: 8 threads over one keep-alive client, in a
    process of its own (as the worker is)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.webhooks", "--raw", url, str(events), secret],
        cwd=common.ROOT,
        env=common.server_env(url),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.split()[-1])


def _raw(url: str, events: int, secret: str) -> None:
    bodies = [
        outbox.body(outbox.new_event_id(), "claim.paid", utcnow(), {"m": i}).encode() for i in range(events)
    ]
    with httpx.Client(limits=httpx.Limits(max_connections=CONCURRENCY), trust_env=False) as client:

        def post(body: bytes) -> None:
            headers = signing.headers(outbox.new_event_id(), utcnow(), body, [secret])
            r = client.post(url, content=body, headers={**headers, "content-type": "application/json"})
            assert r.status_code == 200

        start = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(post, bodies))
        print(events / (time.monotonic() - start))


def main() -> None:
    events = common.scaled(3000, 20_000)
    latency_events = common.scaled(300, 1500)
    rate = 50.0  # events committed per second in the latency run
    common.header(f"webhooks: one worker, {events:,} events; latency over {latency_events:,}")
    receiver = Receiver()
    with common.fresh_database("webhooks") as url:
        settings = Settings(
            database_url=url, secret_key=SecretStr(SECRET), webhook_allow_private_targets=True
        )
        engine = make_engine(settings)
        with transaction(engine) as session:
            bank = bank_service.create_bank(
                session, SYSTEM, code="BENCH", name="Bench", fund_share=Decimal("0.8")
            )
            _, secret = webhook_service.create_endpoint(
                session, settings, SYSTEM, bank.id, EndpointCreate.model_validate({"url": receiver.url})
            )
            bank_id = bank.id
        env = common.server_env(
            url, LOANFUND_SECRET_KEY=SECRET, LOANFUND_WEBHOOK_ALLOW_PRIVATE_TARGETS="true"
        )
        raw_before = raw_baseline(receiver.url, events, secret)
        worker = subprocess.Popen([sys.executable, "-m", "loanfund.cli", "worker"], env=env, cwd=common.ROOT)
        try:
            time.sleep(3)  # the worker starts and idles
            # throughput: N events in one commit
            batch = [outbox.Outgoing(bank_id, outbox.EventType.claim_paid, {"i": i}) for i in range(events)]
            with transaction(engine) as session:
                outbox.emit_many(session, batch)
            committed = time.monotonic()
            last = receiver.wait_for(events * 2, timeout=600)  # the baseline's, then the worker's
            served = events / (last - committed)
            # latency: one event per transaction, at a steady rate
            commits: dict[int, float] = {}
            for n in range(latency_events):
                with transaction(engine) as session:
                    outbox.emit(session, bank_id, outbox.EventType.claim_paid, {"n": n})
                commits[n] = time.monotonic()
                time.sleep(max(0.0, commits[0] + (n + 1) / rate - time.monotonic()))
            receiver.wait_for(events * 2 + latency_events, timeout=120)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            engine.dispose()
        raw_after = raw_baseline(receiver.url, events, secret)
    latencies = [receiver.arrivals[n] - commits[n] for n in commits]
    raw = (raw_before + raw_after) / 2
    p50, p99 = common.percentile(latencies, 50), common.percentile(latencies, 99)
    ratio = served / raw
    poll = Settings().webhook_poll_interval_s
    common.line("worker → receiver", f"{served:,.0f} events/s")
    common.line(
        "baseline: signed POSTs, no database",
        f"{raw:,.0f} events/s (before {raw_before:,.0f}, after {raw_after:,.0f})",
    )
    common.line(
        "ratio worker / baseline",
        f"{ratio:.2f}  (bar ≥ {THROUGHPUT_BAR})  {common.verdict(ratio >= THROUGHPUT_BAR)}",
    )
    common.line(
        "commit → delivery", f"p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms  ({rate:.0f} events/s)"
    )
    common.line(
        "p99 / poll interval",
        f"{p99 / poll:.2f}  (bar ≤ {LATENCY_BAR})  {common.verdict(p99 / poll <= LATENCY_BAR)}",
    )
    common.save(
        "webhooks",
        {
            "events": events,
            "worker_events_per_s": served,
            "raw_events_per_s": raw,
            "ratio": ratio,
            "latency_events": latency_events,
            "latency_p50_ms": p50 * 1000,
            "latency_p99_ms": p99 * 1000,
            "poll_interval_s": poll,
        },
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--raw"]:
        _raw(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
