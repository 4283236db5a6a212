"""Group commit: items that arrive while a group runs form the next group; every item gets its own
result; a failed group sends its items to the ordinary path and does not stop the next."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import cast

from sqlalchemy.orm import Session

from loanfund.core.group_commit import GroupCommit


class FakeSession:
    def __init__(self) -> None:
        self.commits = 0
        self.rollbacks = 0

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Held:
    """A group function that holds its first group until released, recording every group."""

    def __init__(self, fail_group: int | None = None) -> None:
        self.groups: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_group = fail_group

    def __call__(self, session: Session, items: Sequence[int]) -> list[str | None]:
        self.groups.append(list(items))
        if len(self.groups) == 1:
            self.started.set()
            assert self.release.wait(10)
        if len(self.groups) == self.fail_group:
            raise RuntimeError("the database went away")
        return [f"r{i}" if i % 5 else None for i in items]  # multiples of 5: "take the ordinary path"


def _submit_all(gc: GroupCommit[int, str], held: Held, n: int) -> tuple[dict[int, str | None], FakeSession]:
    results: dict[int, str | None] = {}
    session = FakeSession()

    def go(i: int) -> None:
        results[i] = gc.submit(cast(Session, session), i)

    first = threading.Thread(target=go, args=(1,))
    first.start()
    assert held.started.wait(10)
    others = [threading.Thread(target=go, args=(i,)) for i in range(2, n + 1)]
    for t in others:
        t.start()
    _wait_until(lambda: gc.queued == n - 1)
    held.release.set()
    for t in [first, *others]:
        t.join(10)
    return results, session


def test_alone_a_request_is_a_group_of_one() -> None:
    calls: list[list[int]] = []

    def run(session: Session, items: Sequence[int]) -> list[int | None]:
        calls.append(list(items))
        return [i * 2 for i in items]

    gc: GroupCommit[int, int] = GroupCommit(run)
    session = FakeSession()
    assert gc.submit(cast(Session, session), 3) == 6
    assert gc.submit(cast(Session, session), 4) == 8
    assert calls == [[3], [4]]
    assert (session.commits, gc.groups, gc.items) == (2, 2, 2)


def test_requests_arriving_during_a_group_form_the_next_one() -> None:
    held = Held()
    gc: GroupCommit[int, str] = GroupCommit(held)
    results, session = _submit_all(gc, held, 9)
    assert held.groups[0] == [1]
    assert sorted(held.groups[1]) == list(range(2, 10))
    assert len(held.groups) == 2
    assert results == {i: (f"r{i}" if i % 5 else None) for i in range(1, 10)}
    assert session.commits == 2
    assert gc.queued == 0


def test_groups_are_capped_and_the_lead_passes_on() -> None:
    held = Held()
    gc: GroupCommit[int, str] = GroupCommit(held, max_group=3)
    results, _ = _submit_all(gc, held, 9)
    assert [len(g) for g in held.groups] == [1, 3, 3, 2]
    assert sorted(i for g in held.groups for i in g) == list(range(1, 10))
    assert results == {i: (f"r{i}" if i % 5 else None) for i in range(1, 10)}


def test_a_failed_group_is_rolled_back_and_its_items_take_the_ordinary_path() -> None:
    held = Held(fail_group=2)
    gc: GroupCommit[int, str] = GroupCommit(held)
    results, session = _submit_all(gc, held, 6)
    assert results[1] == "r1"
    assert all(results[i] is None for i in range(2, 7))
    assert (session.commits, session.rollbacks) == (1, 1)
    # nothing is left stuck: the next request leads at once
    assert gc.submit(cast(Session, session), 7) == "r7"


def test_two_leaders_run_groups_side_by_side() -> None:
    inside = threading.Semaphore(0)
    release = threading.Event()

    def run(session: Session, items: Sequence[int]) -> list[int | None]:
        inside.release()
        assert release.wait(10)
        return list(items)

    gc: GroupCommit[int, int] = GroupCommit(run, leaders=2)
    results: dict[int, int | None] = {}
    threads = [
        threading.Thread(
            target=lambda i=i: results.__setitem__(i, gc.submit(cast(Session, FakeSession()), i))
        )
        for i in (1, 2)
    ]
    for t in threads:
        t.start()
    assert inside.acquire(timeout=10)
    assert inside.acquire(timeout=10)  # both groups are running at once
    release.set()
    for t in threads:
        t.join(10)
    assert results == {1: 1, 2: 2}
