"""Parameters: the types shared by the routers, and one rule for every query string.

Record ids are 64-bit integers in the database (BIGINT on PostgreSQL, INTEGER on SQLite). A larger
number in a path or query would not even reach a `WHERE` clause (the driver refuses to bind it), so
ids are declared with their range: an id out of range is a 422 naming the parameter, and the OpenAPI
document says so.

A query parameter declared with one value may be given once: Starlette keeps every value of a repeated
key and FastAPI reads the last, so `?limit=abc&limit=5` used to be answered as if the first value were
not there. `single_valued_query` (installed for the whole app) refuses such a request with a 422 naming
the parameter; parameters declared as lists may still repeat.
"""

from __future__ import annotations

from collections import Counter
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError

MAX_ID = 2**63 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Record id")]


def id_query(description: str | None = None) -> Any:
    """`Query(...)` for an optional record-id filter: `Annotated[int | None, id_query()] = None`."""
    return Query(ge=1, le=MAX_ID, description=description)


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType, Annotated):
        return any(_is_sequence(a) for a in get_args(annotation))
    return origin in (list, tuple, set, frozenset)


def _scalar_query_params(dependant: Any) -> set[str]:
    names = {f.alias for f in dependant.query_params if not _is_sequence(f.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _scalar_query_params(sub)
    return names


async def single_valued_query(request: Request) -> None:
    """App-wide dependency: a single-valued query parameter given more than once is a 422."""
    counts = Counter(key for key, _ in request.query_params.multi_items())
    repeated = {key for key, n in counts.items() if n > 1}
    if not repeated:
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    scalars = _scalar_query_params(dependant) if dependant is not None else set()
    errors = [
        {"loc": ("query", key), "msg": "Give this parameter once", "type": "repeated_parameter"}
        for key in sorted(repeated & scalars)
    ]
    if errors:
        raise RequestValidationError(errors)
