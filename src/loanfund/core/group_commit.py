"""Group commit: concurrent small writes of one kind share one transaction.

A request hands its item to `GroupCommit.submit`. If fewer than `leaders` groups are running, the request
leads: it runs a group made of its own item and every item queued so far (at most `max_group`) in one
transaction on its own session, commits, and answers the items of the others. Requests that arrive
while `leaders` groups run queue up; when a leader has committed, the first of them leads the next
group. Nothing waits for a timer: a request alone is a group of one, and the busier the server, the
larger the groups and the fewer the transactions (and statements, and commits) per request. With more
than one leader (`LOANFUND_GROUP_COMMIT_LEADERS`), groups run side by side; their transactions lock rows
in the same order as every other writer (loans by id, aggregate rows by key), so they can wait for each
other but not deadlock. One leader is the default: on a CPU-bound worker a second one did not help.

The group function answers each item with a result, or with None: "not in a group — take the ordinary
path". It says None for anything that is not the plain case (a refusal, a replay, a retry racing its
first attempt), so that every such answer is produced by the ordinary path, one request at a time. If
the group's transaction fails, it is rolled back and every item of it takes the ordinary path: a group
never answers for work that did not commit.

Requests wait on a `threading.Event` in their worker thread; they hold no database connection while
they wait (the caller commits its own session before submitting). Per process, like the thread pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Slot(Generic[T, R]):
    item: T
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: R | None = None


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[Session, Sequence[T]], Sequence[R | None]],
        *,
        max_group: int = 64,
        leaders: int = 1,
    ) -> None:
        self._run = run
        self.max_group = max_group
        self.leaders = leaders
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._running = 0  # groups running; invariant: queue not empty ⇒ running == leaders
        self.groups = 0  # groups run and items carried, for the logs and tests
        self.items = 0

    @property
    def queued(self) -> int:
        """Items waiting for a group."""
        with self._lock:
            return len(self._queue)

    def submit(self, session: Session, item: T) -> R | None:
        """The item's result from a committed group, or None: take the ordinary path."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            leads = self._running < self.leaders
            if leads:
                self._running += 1
            else:
                self._queue.append(slot)
        if not leads:
            slot.ready.wait()
            if not slot.lead:
                return slot.result
        return self._lead(session, slot)

    def _lead(self, session: Session, own: _Slot[T, R]) -> R | None:
        with self._lock:  # the queue holds only slots waiting for a result or the lead
            group = [own, *self._queue[: self.max_group - 1]]
            del self._queue[: self.max_group - 1]
        results: Sequence[R | None] = [None] * len(group)
        try:
            results = self._commit(session, [s.item for s in group])
        finally:
            for slot, result in zip(group[1:], results[1:], strict=True):
                slot.result = result
                slot.ready.set()
            with self._lock:
                if self._queue:
                    nxt = self._queue.pop(0)
                    nxt.lead = True
                    nxt.ready.set()
                else:
                    self._running -= 1
        return results[0]

    def _commit(self, session: Session, items: list[T]) -> Sequence[R | None]:
        try:
            results = self._run(session, items)
            assert len(results) == len(items)
            session.commit()
        except Exception:
            session.rollback()
            log.warning("group of %d failed; its items take the ordinary path", len(items), exc_info=True)
            return [None] * len(items)
        with self._lock:
            self.groups += 1
            self.items += sum(1 for r in results if r is not None)
        return results
