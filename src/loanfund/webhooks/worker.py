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
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from loanfund.core.config import Settings
from loanfund.webhooks import delivery
from loanfund.webhooks.outbox import CHANNEL
from loanfund.webhooks.sender import Message, Outcome, Sender

log = logging.getLogger("loanfund.webhooks")


@contextmanager
def _transaction(maker: sessionmaker[Session]) -> Iterator[Session]:
    session = maker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


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

    def claim(self, limit: int) -> list[tuple[Message, str]]:
        with _transaction(self.sessions) as session:
            return delivery.claim(session, self.settings, limit)

    def record(self, results: list[tuple[Message, str, Outcome]]) -> None:
        with _transaction(self.sessions) as session:
            delivery.record_outcomes(session, self.settings, results)

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

    def run(self) -> None:
        if self.listen_engine is not None:
            threading.Thread(target=self._listen, name="webhook-listen", daemon=True).start()
        out: dict[Future[Outcome], tuple[Message, str]] = {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook-send") as pool:
            while not self.stopping.is_set():
                self.wake.clear()
                try:
                    self._collect(out, wait=False)
                    free = self.concurrency - len(out)
                    claimed = self.claim(free) if free > 0 else []
                except SQLAlchemyError as exc:
                    self._database_error(exc)
                    continue
                for message, token in claimed:
                    future = pool.submit(self.sender.send, message)
                    future.add_done_callback(lambda _: self.wake.set())
                    out[future] = (message, token)
                if claimed and len(claimed) == free:
                    continue  # more may be due: claim again as soon as a slot frees
                self.wake.wait(self.settings.webhook_poll_interval_s)
            self._collect(out, wait=True)
        self.sender.close()

    def _collect(self, out: dict[Future[Outcome], tuple[Message, str]], *, wait: bool) -> None:
        done = [f for f in out if wait or f.done()]
        if not done:
            return
        results = [(*out[f], f.result()) for f in done]
        self.record(results)  # on a database error the answers stay out: their leases end, they go again
        for f in done:
            del out[f]

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
