"""Parameter types shared by the routers.

Record ids are 64-bit integers in the database (BIGINT on PostgreSQL, INTEGER on SQLite). A larger
number in a path or query would not even reach a `WHERE` clause (the driver refuses to bind it), so
ids are declared with their range: an id out of range is a 422 naming the parameter, and the OpenAPI
document says so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

MAX_ID = 2**63 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Record id")]


def id_query(description: str | None = None) -> Any:
    """`Query(...)` for an optional record-id filter: `Annotated[int | None, id_query()] = None`."""
    return Query(ge=1, le=MAX_ID, description=description)
