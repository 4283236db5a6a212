"""Keyset pagination: `?limit=N&cursor=C`; the answer carries `next_cursor` (null on the last page).

The cursor is the id of the last row of the previous page; lists are ordered by id, so pages are
stable under concurrent inserts and cost the same at row 10 and row 10,000,000.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class PageParams:
    limit: int
    after_id: int | None

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than the page, to learn whether another page exists."""
        return self.limit + 1

    def page(self, rows: Sequence[R], convert: Callable[[R], T], key: Callable[[R], int]) -> Page[T]:
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        items = [convert(r) for r in rows]
        return Page[T](items=items, next_cursor=str(key(rows[-1])) if more and rows else None)


def page_params(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=10_000, description="Page size (capped by the server)")
    ] = None,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page")
    ] = None,
) -> PageParams:
    settings = request.app.state.settings
    size = settings.page_size_default if limit is None else min(limit, settings.page_size_max)
    return PageParams(limit=size, after_id=int(cursor) if cursor is not None else None)


Pagination = Annotated[PageParams, Depends(page_params)]
