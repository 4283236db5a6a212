"""Schema fuzzing: schemathesis drives every operation of the app's own OpenAPI document, as each kind of
caller, with data that fits the schema (positive) and data that does not (negative), and checks:

* `not_a_server_error` — no 5xx (the database is up, so not even 503);
* `status_code_conformance` — every status the app answers is declared for the operation;
* `response_schema_conformance` — every body matches the declared schema for its status;
* `negative_data_rejection` — input that breaks the schema is refused with a 4xx.

The bounded run (part of `make test`) takes LOANFUND_FUZZ_EXAMPLES examples (default 5) per operation,
caller and mode, derandomized. `make fuzz` runs the same test with 200 examples and fresh randomness
(LOANFUND_FUZZ_RANDOM=1; set LOANFUND_FUZZ_SEED to repeat a run). Failures of every operation are
collected and reported together, each with a curl command that reproduces it.

Positive examples are sent half of the time with path parameters pointing at real records of the
world (bank A's loan, report, application...), so that they get past the lookup into the business rules.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Connection

from loanfund.core.auth import authenticate
from loanfund.core.db import get_session
from loanfund.core.ratelimit import RateLimiter, limit_public
from tests.security.conftest import World, api_routes, dependency_calls

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, negative_data_rejection]
EXAMPLES = int(os.environ.get("LOANFUND_FUZZ_EXAMPLES", "5"))
RANDOM = os.environ.get("LOANFUND_FUZZ_RANDOM", "") not in ("", "0")  # `make fuzz` sets it
SEED = os.environ.get("LOANFUND_FUZZ_SEED")

# Kinds of caller. "bank_own" is bank A, whose records the world holds; "enterprise" presents the status
# token of bank A's application (meaningful on the status route, a wrong key everywhere else).
CALLERS = ["anonymous", "bank_own", "analyst", "officer", "approver", "admin", "enterprise"]


class Stats:
    """What the run sent and got, printed at the end of the session (tests/security/conftest.py)."""

    def __init__(self) -> None:
        self.operations: set[str] = set()
        self.callers: set[str] = set()
        self.statuses: Counter[int] = Counter()

    def record(self, operation: str, status: int) -> None:
        self.operations.add(operation)
        self.statuses[status] += 1

    def summary(self) -> str:
        total = sum(self.statuses.values())
        by_status = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"schema fuzzing: {len(self.operations)} operations x {len(self.callers)} callers x 2 modes, "
            f"{EXAMPLES} examples each: {total} requests ({by_status})"
        )


STATS = Stats()

# Authentication is the caller's, not generated: schemathesis would otherwise invent (or, in negative
# mode, remove) the Authorization header and the caller under test would not be the one sent.
CONFIG = {"generation": {"with-security-parameters": False}}


@pytest.fixture
def fuzz_app(app: FastAPI, client: TestClient, fresh_limits: RateLimiter) -> FastAPI:
    """The app with its sessions joined to the test's transaction (the `client` fixture does that)."""
    return app


def _settings() -> hypothesis.settings:
    # The bounded run is the same every time and skips shrinking (its curl lines are reproduction
    # enough); a random run shrinks what it finds to the smallest failing request.
    random = RANDOM or SEED is not None
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if random else [])
    return hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=not random,
        database=None,  # nothing written to .hypothesis/
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def _strategy(
    operation: schemathesis.APIOperation, mode: GenerationMode, world: World
) -> st.SearchStrategy[schemathesis.Case]:
    generated = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.NEGATIVE:
        return generated
    # A parameter the world has no record for (see World.path_params) stays generated.
    known = world.path_params()
    real = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
    if not real:
        return generated
    return st.one_of(operation.as_strategy(generation_mode=mode, path_parameters=real), generated)


def _run(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    world: World,
    headers: dict[str, str],
    limiter: RateLimiter,
    connection: Connection,
) -> str | None:
    """Fuzz one operation in one mode; the failure report, or None."""

    @_settings()
    @given(case=_strategy(operation, mode, world))
    def run(case: schemathesis.Case) -> None:
        limiter.reset()  # every example from one address: 429s would drown everything else
        # Each example sees the world as built and leaves no trace: rolling its SAVEPOINT back also keeps
        # PostgreSQL's per-transaction subtransaction cache small over thousands of examples.
        savepoint = connection.begin_nested()
        try:
            response = case.call(headers=headers)
        finally:
            savepoint.rollback()
        STATS.record(operation.label, response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    if SEED is not None:
        run = hypothesis.seed(int(SEED))(run)
    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Negative mode only: the operation takes no input that could break its schema (no parameters
        # and no body, e.g. GET /healthz); there is nothing to send.
        if mode is GenerationMode.POSITIVE:
            raise
    except (Exception, BaseExceptionGroup) as exc:
        return f"{operation.label} [{mode.value}]\n{exc}"
    return None


@pytest.mark.parametrize("kind", CALLERS)
def test_fuzz(
    kind: str, fuzz_app: FastAPI, world: World, fresh_limits: RateLimiter, connection: Connection
) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", fuzz_app, config=schemathesis.Config.from_dict(CONFIG)
    )
    headers = world.headers(kind)
    STATS.callers.add(kind)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            report = _run(operation, mode, world, headers, fresh_limits, connection)
            if report is not None:
                failures.append(report)
    assert not failures, f"{len(failures)} failing operation(s) as {kind}:\n\n" + "\n\n".join(failures)


# --- what the document must declare, read from each route's dependencies ---------------------------------


def _is_role_check(call: Any) -> bool:
    name = getattr(call, "__qualname__", "")
    return name == "_require_bank" or name.startswith("require_staff.")


def test_every_operation_declares_what_its_dependencies_can_answer(app: FastAPI) -> None:
    """The statuses that come from shared machinery are declared wherever that machinery runs: 401 with a
    key, 403 with a role check, 422 with any input, 413 with a body, 409 with an Idempotency-Key (in
    progress), 429 with a rate limit, 503 with a database session. Business statuses (404, 409) are
    the fuzzer's to find."""
    doc = app.openapi()
    problems = []
    for (method, path), route in api_routes(app).items():
        operation = doc["paths"][path][method.lower()]
        declared = set(operation["responses"])
        calls = dependency_calls(route.dependant)
        needed = set()
        if authenticate in calls:
            needed.add("401")
        if any(_is_role_check(c) for c in calls):
            needed.add("403")
        if operation.get("parameters") or "requestBody" in operation:
            needed.add("422")
        if "requestBody" in operation:
            needed.add("413")
        if get_session in calls:
            needed.add("503")
        if limit_public in calls:
            needed.add("429")
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
            needed |= {"409", "422"}  # a retry while the first runs; the key reused for another request
        if needed - declared:
            missing = ", ".join(sorted(needed - declared))
            problems.append(f"{method} {path} does not declare {missing}: add responses=responses(...)")
        for code, response in operation["responses"].items():
            if int(code) < 400 or (path, code) == ("/readyz", "503"):
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != "#/components/schemas/ErrorResponse":
                problems.append(f"{method} {path} declares {code} without the error envelope (ErrorResponse)")
    assert not problems, "\n".join(problems)
