"""`loanfund worker`: deliver webhook events.

One loop on one database connection claims due deliveries (`delivery.claim`), hands them to a pool of
`webhook_worker_concurrency` threads that do nothing but HTTP (`sender.Sender`), and records what
came back (`delivery.record_outcomes`) — all the database work in short transactions on the loop's
thread. An idle worker sleeps until `webhook_poll_interval_s` has passed or, on PostgreSQL, until a
committed event's `NOTIFY loanfund_webhooks` wakes it. Any number of workers may run against one
PostgreSQL database; on SQLite, run one.

SIGTERM or SIGINT: stop claiming, wait for the messages out (at most the timeout), record them, exit.
A worker killed outright loses nothing: what it had claimed comes due again when its lease ends.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from loanfund.core.config import Settings
from loanfund.core.session import transaction
from loanfund.webhooks import delivery
from loanfund.webhooks.outbox import CHANNEL
from loanfund.webhooks.sender import Message, Outcome, Sender

log = logging.getLogger("loanfund.webhooks")


class Worker:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        concurrency: int | None = None,
        listen: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.concurrency = concurrency or settings.webhook_worker_concurrency
        self.sender = Sender(settings, max_connections=self.concurrency)
        self.listen_engine = listen
        self.stopping = threading.Event()
        self.wake = threading.Event()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    # --- the steps, usable one by one (tests, benchmarks) ---------------------------------------

    def cycle(self, results: list[tuple[Message, str, Outcome]], limit: int) -> list[tuple[Message, str]]:
        """One transaction: record what came back, then claim up to `limit` more. The worker's own
        bookkeeping is committed without waiting for the disk on PostgreSQL (`synchronous_commit`
        off): a database crash can lose its last few milliseconds, which only means a message is
        sent again — what at-least-once allows — never that an event is lost (events are written by
        the transactions that cause them, durably)."""
        with transaction(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            delivery.record_outcomes(session, self.settings, results)
            return delivery.claim(session, self.settings, limit) if limit > 0 else []

    def claim(self, limit: int) -> list[tuple[Message, str]]:
        return self.cycle([], limit)

    def record(self, results: list[tuple[Message, str, Outcome]]) -> None:
        self.cycle(results, 0)

    def run_once(self, limit: int | None = None) -> int:
        """Claim what is due (up to `limit`), send it all, record it; how many were sent."""
        claimed = self.claim(limit or self.concurrency)
        if not claimed:
            return 0
        with ThreadPoolExecutor(self.concurrency) as pool:
            outcomes = list(pool.map(lambda c: self.sender.send(c[0]), claimed))
        self.record([(m, token, o) for (m, token), o in zip(claimed, outcomes, strict=True)])
        return len(claimed)

    # --- the loop ---------------------------------------------------------------------------------

    @property
    def prefetch(self) -> int:
        """Messages held at once (sending or queued for a thread): up to four rounds of the threads,
        as many as are sure to be sent well within the lease even if every one times out."""
        rounds = int(self.settings.webhook_claim_lease_s // self.settings.webhook_timeout_s) - 1
        return self.concurrency * max(1, min(4, rounds))

    def run(self) -> None:
        if self.listen_engine is not None:
            threading.Thread(target=self._listen, name="webhook-listen", daemon=True).start()
        out: dict[Future[Outcome], tuple[Message, str]] = {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-send") as pool:
            while not self.stopping.is_set():
                self.wake.clear()
                done = [f for f in out if f.done()]
                held = len(out) - len(done)
                want = self.prefetch - held if held < self.concurrency else 0
                if not done and not want:
                    self.wake.wait(self.settings.webhook_poll_interval_s)
                    continue
                try:
                    claimed = self.cycle([(*out[f], f.result()) for f in done], want)
                except SQLAlchemyError as exc:
                    # the answers stay here and are recorded on the next try; the leases of what is
                    # unrecorded for too long end and those messages go again
                    self._database_error(exc)
                    continue
                for f in done:
                    del out[f]
                for message, token in claimed:
                    future = pool.submit(self.sender.send, message)
                    future.add_done_callback(lambda _: self.wake.set())
                    out[future] = (message, token)
                if not claimed and not done:
                    self.wake.wait(self.settings.webhook_poll_interval_s)
            # stopping: what no thread has started goes back at once; what is out is waited for
            unsent = [out[f] for f in out if f.cancel()]
            finished = [(*out[f], f.result()) for f in out if not f.cancelled()]
            with suppress(SQLAlchemyError), transaction(self.sessions) as session:
                delivery.record_outcomes(session, self.settings, finished)
                delivery.release(session, unsent)
        self.sender.close()

    def _database_error(self, exc: SQLAlchemyError) -> None:
        log.error("webhook worker: database error: %s", type(exc).__name__)
        self.stopping.wait(min(5.0, self.settings.webhook_poll_interval_s * 5))

    def _listen(self) -> None:
        """Set `wake` on every NOTIFY of the channel (PostgreSQL); reconnect after a failure."""
        assert self.listen_engine is not None
        while not self.stopping.is_set():
            try:
                with self.listen_engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    conn.exec_driver_sql(f"LISTEN {CHANNEL}")
                    driver = conn.connection.driver_connection
                    assert driver is not None
                    while not self.stopping.is_set():
                        for _ in driver.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except (DBAPIError, OSError) as exc:
                log.warning("webhook worker: listening failed (%s); polling", type(exc).__name__)
                self.stopping.wait(5)
