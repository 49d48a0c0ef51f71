"""The one place where errors become HTTP responses in OpenAI's envelope.

``{"error": {"message", "type", "param", "code"}}`` (:class:`ErrorResponse`, also what the OpenAPI schema
documents) with the status and headers from :data:`ERROR_TABLE`, chosen by exception class (most specific
first), never by message text. Request validation (pydantic, malformed JSON) is 400 with ``param`` naming the
offending field. Anything unexpected is a 500 that does not leak internals. The SSE path reuses
:func:`error_object` for its final error event; the request gate (``gate.py``) answers with
:func:`exception_response` before a route runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from speechserve.errors import (
    CheckpointError,
    EncoderWeightsMissing,
    EngineDead,
    InputTooLarge,
    InvalidAudio,
    InvalidRequest,
    MediaURLRejected,
    ModelNotFound,
    Overloaded,
    SpeechServeError,
    UnknownVoice,
    UnsupportedAudioFormat,
    UnsupportedFeature,
    UnsupportedTask,
)

log = logging.getLogger("speechserve.server")


class ErrorObject(BaseModel):
    """OpenAI's error object."""

    message: str
    """What went wrong, for a person to read (never the server's internals or paths)."""
    type: str
    """``invalid_request_error``, ``rate_limit_error`` or ``server_error``."""
    param: str | None
    """The request field at fault, when there is one."""
    code: str | None
    """Machine-readable reason: ``invalid_value``, ``voice_not_found``, ``model_not_found`` …"""


class ErrorResponse(BaseModel):
    """Body of every error response: ``{"error": {message, type, param, code}}``."""

    error: ErrorObject


class AuthenticationFailed(SpeechServeError):
    """Missing or wrong API key (HTTP 401)."""


class RequestTooLarge(InputTooLarge):
    """A JSON request body over ``max_body_mb`` (HTTP 413)."""


class ModelsLoading(SpeechServeError):
    """The models are still loading (HTTP 503, ``Retry-After``)."""


class ModelsFailed(SpeechServeError):
    """A model failed to load; the server cannot answer (HTTP 503). The reason is in the server log."""


@dataclass(frozen=True)
class ErrorKind:
    """How one exception class is answered."""

    status: int
    type: str
    code: str | None
    param: str | None = None  # used when the exception carries none
    headers: tuple[tuple[str, str], ...] = ()


ERROR_TABLE: dict[type[BaseException], ErrorKind] = {
    UnknownVoice: ErrorKind(400, "invalid_request_error", "voice_not_found"),
    EncoderWeightsMissing: ErrorKind(400, "invalid_request_error", "voice_cloning_unavailable"),
    UnsupportedAudioFormat: ErrorKind(400, "invalid_request_error", "unsupported_format", "file"),
    InvalidAudio: ErrorKind(400, "invalid_request_error", "invalid_audio", "file"),
    MediaURLRejected: ErrorKind(400, "invalid_request_error", "invalid_audio_url", "messages"),
    RequestTooLarge: ErrorKind(413, "invalid_request_error", "request_too_large"),
    InputTooLarge: ErrorKind(413, "invalid_request_error", "file_too_large", "file"),
    InvalidRequest: ErrorKind(400, "invalid_request_error", "invalid_value"),
    UnsupportedTask: ErrorKind(400, "invalid_request_error", "unsupported_task", "model"),
    UnsupportedFeature: ErrorKind(400, "invalid_request_error", "unsupported"),
    AuthenticationFailed: ErrorKind(
        401, "invalid_request_error", "invalid_api_key", headers=(("WWW-Authenticate", "Bearer"),)
    ),
    ModelNotFound: ErrorKind(404, "invalid_request_error", "model_not_found", "model"),
    Overloaded: ErrorKind(429, "rate_limit_error", "overloaded", headers=(("Retry-After", "1"),)),
    ModelsLoading: ErrorKind(503, "server_error", "loading", headers=(("Retry-After", "5"),)),
    ModelsFailed: ErrorKind(503, "server_error", "model_load_failed"),
    EngineDead: ErrorKind(503, "server_error", "engine_unavailable"),
    CheckpointError: ErrorKind(500, "server_error", "checkpoint_error"),
}
_INTERNAL = ErrorKind(500, "server_error", "internal_error")


def error_kind(exc: BaseException) -> ErrorKind:
    """The table entry of ``exc``'s most specific class (500 for anything unknown)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return _INTERNAL


def error_object(exc: BaseException) -> dict:
    """The inner ``error`` object for ``exc`` (internal errors get a generic message)."""
    kind = error_kind(exc)
    message = str(exc) if kind is not _INTERNAL else "internal server error; see the server log"
    param = getattr(exc, "param", None) or kind.param
    return {"message": message, "type": kind.type, "param": param, "code": kind.code}


def error_response(status: int, error: dict, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def exception_response(exc: BaseException) -> JSONResponse:
    """The envelope, status and headers for ``exc``."""
    kind = error_kind(exc)
    return error_response(kind.status, error_object(exc), dict(kind.headers) or None)


def _validation_error(exc: RequestValidationError) -> dict:
    """First pydantic/JSON error → the envelope's message and param (the top-level body field)."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "malformed JSON")
        return {"message": f"Request body is not valid JSON: {reason}", "type": "invalid_request_error",
                "param": None, "code": "invalid_json"}  # fmt: skip
    param = str(loc[0]) if loc and isinstance(loc[0], str) else None
    where = ".".join(str(p) for p in loc if not str(p)[:1].isupper())  # drop union-member tags
    message = f"{where}: {first['msg']}" if where else f"Request body must be a JSON object: {first['msg']}"
    return {"message": message, "type": "invalid_request_error", "param": param, "code": "invalid_value"}


async def _on_speechserve_error(request: Request, exc: Exception) -> JSONResponse:
    kind = error_kind(exc)
    _count(request, kind.code or kind.type)
    if kind.status >= 500:
        log.error("request failed: %s", exc)
    return exception_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = _validation_error(exc)
    _count(request, error["code"])
    return error_response(400, error)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, SpeechServeError):  # raised while FastAPI read the body (e.g. over the cap)
        return await _on_speechserve_error(request, exc.__cause__)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    _count(request, code)
    error = {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": code}
    return error_response(exc.status_code, error, dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    _count(request, _INTERNAL.code or "internal_error")
    return error_response(500, error_object(exc))


def _count(request: Request, code: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(type=code).inc()


def install_error_handlers(app: FastAPI) -> None:
    """Route every error an endpoint can raise through the envelope."""
    app.add_exception_handler(SpeechServeError, _on_speechserve_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
