"""Every example in the OpenAPI document validates against the schema it illustrates: the examples of
whole bodies (components), of their fields, and of parameters. Clients copy examples; schemathesis sends
them first (its explicit phase)."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from fastapi import FastAPI

DIALECT = "https://json-schema.org/draft/2020-12/schema"  # OpenAPI 3.1's


def _examples(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """(where, a schema or a reference into the document, the example)."""
    out: list[tuple[str, dict[str, Any], Any]] = []
    for name, schema in doc["components"]["schemas"].items():
        ref = f"#/components/schemas/{name}"
        out += [(name, {"$ref": ref}, ex) for ex in schema.get("examples", [])]
        for field, prop in schema.get("properties", {}).items():
            out += [
                (f"{name}.{field}", {"$ref": f"{ref}/properties/{field}"}, ex)
                for ex in prop.get("examples", [])
            ]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for p in operation.get("parameters", []):
                found = [
                    *p.get("schema", {}).get("examples", []),
                    *([p["example"]] if "example" in p else []),
                ]
                out += [(f"{method.upper()} {path} ?{p['name']}", p["schema"], ex) for ex in found]
    return out


def test_every_example_validates(app: FastAPI) -> None:
    doc = app.openapi()
    examples = _examples(doc)
    assert len(examples) > 100
    wrong = []
    for where, schema, example in examples:
        validator = jsonschema_rs.validator_for(
            {"$schema": DIALECT, "components": doc["components"], **schema}
        )
        errors = [e.message for e in validator.iter_errors(example)]
        if errors:
            wrong.append(f"{where}: {example!r}: {'; '.join(errors)}")
    assert not wrong, "\n".join(wrong)


def test_the_risk_bodies_have_examples(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    for name in (
        "StressTestCreate",
        "StressTestRead",
        "StressTestSummary",
        "MonthRatingsRead",
        "BankRatingRead",
    ):
        assert schemas[name].get("examples"), name
