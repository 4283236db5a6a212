"""What the OpenAPI document says beyond what the routes declare: limits that come from settings."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def document_max_items(app: FastAPI, schema: str, field: str, max_items: int) -> None:
    """Declare `maxItems` on the array `field` of the component `schema`: a limit that is a setting
    (e.g. `batch_max_items`) and so cannot be written on the model itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        doc["components"]["schemas"][schema]["properties"][field]["maxItems"] = max_items
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
