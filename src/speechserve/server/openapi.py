"""What ``/openapi.json`` says about errors: the status codes each route really answers, each with the error
envelope's schema (:class:`~speechserve.server.errors.ErrorResponse`).

FastAPI documents a 422 for every route that validates input; this server answers validation errors with
400 (OpenAI's status), so :func:`install_openapi` removes the 422 entries and the schemas only they used.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from speechserve.server.errors import ErrorResponse

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request; `param` names the field at fault",
    401: "Missing or wrong API key (only when the server is started with API keys)",
    404: "Unknown model; the message lists the valid names",
    413: "Request body too large (`max_body_mb`; multipart uploads and audio: `max_upload_mb`)",
    429: "Queue full; retry after `Retry-After` seconds",
    503: "Models still loading (with `Retry-After`), a model failed to load, or its engine stopped",
}
API = (401, 503)
"""Every ``/v1`` route: the API key is checked and the models must be loaded."""
POST = (*API, 400, 413)
"""Every ``/v1`` route with a request body."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route answering ``statuses`` with the error envelope."""
    return {s: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[s]} for s in sorted(set(statuses))}


def _strip_422(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # the first refers to the second
        others = {**schema, "components": {k: v for k, v in components.items() if k != name}}
        if name in components and f'"#/components/schemas/{name}"' not in json.dumps(others):
            del components[name]


def install_openapi(app: FastAPI) -> None:
    """Serve ``app``'s schema without FastAPI's 422 entries (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _strip_422(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
