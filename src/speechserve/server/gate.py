"""The request gate: answers from the request line and headers alone, before any route runs and before any
body byte is read — a missing or wrong API key (401), a declared ``Content-Length`` over the cap (413), the
models still loading (503) — then counts the body while it streams in, so a body without (or with a false)
``Content-Length`` is stopped at the cap too (413).

A pure ASGI middleware rather than a FastAPI dependency: FastAPI reads and parses a JSON body before it
solves a route's dependencies, so a dependency would check the key only after the whole body was in memory.

Caps: multipart uploads (``upload_paths``) ``max_upload_mb`` plus room for the form framing; every other
body ``max_body_mb``.

WebSocket handshakes on ``/v1`` (``/v1/realtime``) pass the same key and readiness checks before the app
accepts them. The key comes from ``Authorization: Bearer`` or, since browsers cannot set headers on a
WebSocket, from the subprotocol ``openai-insecure-api-key.<key>`` (OpenAI's convention). A refused handshake
is answered with the same JSON error and status (401, 503) where the server supports WebSocket denial
responses (uvicorn does), else closed with 1008 (the client sees a 403).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speechserve.errors import SpeechServeError
from speechserve.server.auth import api_key_error
from speechserve.server.errors import RequestTooLarge, error_kind, exception_response
from speechserve.server.metrics import ServerMetrics
from speechserve.server.settings import ServerSettings
from speechserve.server.startup import Startup
from speechserve.server.uploads import FORM_OVERHEAD_BYTES, too_large

API_PREFIX = "/v1"


@dataclass(frozen=True)
class BodyCap:
    """The most bytes a request body may have, and the error for one that has more."""

    limit: int
    refuse: Callable[[int], SpeechServeError]
    """Body size seen (or declared) → the 413 to answer."""


def json_cap(limit: int) -> BodyCap:
    def refuse(size: int) -> SpeechServeError:
        return RequestTooLarge(
            f"the request body is {size / 1e6:.2f} MB or more; this server accepts request bodies of at most "
            f"{limit / 1e6:.2f} MB (max_body_mb)"
        )

    return BodyCap(limit, refuse)


def upload_cap(max_file_bytes: int) -> BodyCap:
    def refuse(size: int) -> SpeechServeError:
        return too_large(size, max_file_bytes, "the request body")

    return BodyCap(max_file_bytes + FORM_OVERHEAD_BYTES, refuse)


def is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def counted(receive: Receive, cap: BodyCap) -> Receive:
    """``receive`` that raises the cap's 413 error once the body has passed ``cap.limit`` bytes."""
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap.limit:
                raise cap.refuse(seen)
        return message

    return receive_counted


class Gate:
    """Pure ASGI middleware in front of every route (see the module docstring). Lifetime: the app."""

    def __init__(
        self, app: ASGIApp, settings: ServerSettings, startup: Startup, metrics: ServerMetrics,
        upload_paths: frozenset[str],
    ) -> None:  # fmt: skip
        self.app, self.settings, self.startup, self.metrics = app, settings, startup, metrics
        self.upload_paths = upload_paths
        self.json_cap = json_cap(settings.max_body_bytes)
        self.upload_cap = upload_cap(settings.max_upload_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            return await self.websocket(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = self.upload_cap if scope["path"] in self.upload_paths else self.json_cap
        refusal = self.refusal(scope, cap)
        if refusal is not None:
            self.metrics.errors.labels(type=error_kind(refusal).code or "refused").inc()
            return await exception_response(refusal)(scope, receive, send)
        await self.app(scope, counted(receive, cap), send)

    def refusal(self, scope: Scope, cap: BodyCap) -> SpeechServeError | None:
        """The error to answer without reading the body, if any: key, then declared size, then readiness."""
        headers = Headers(scope=scope)
        api = is_api(scope["path"])
        if api and (error := api_key_error(headers, self.settings.api_keys)):
            return error
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap.limit:
            return cap.refuse(int(declared))
        return self.startup.refusal() if api else None

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: key and readiness checked before the app sees it (no body, no caps)."""
        refusal = None
        if is_api(scope["path"]):
            refusal = api_key_error(websocket_auth_headers(scope), self.settings.api_keys)
            refusal = refusal or self.startup.refusal()
        if refusal is None:
            return await self.app(scope, receive, send)
        self.metrics.errors.labels(type=error_kind(refusal).code or "refused").inc()
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            return await exception_response(refusal)(scope, receive, send)
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": str(refusal)[:120]})


WS_POLICY_VIOLATION = 1008
KEY_SUBPROTOCOL = "openai-insecure-api-key."
"""Subprotocol prefix carrying the API key of a browser's WebSocket (which cannot send headers)."""


def websocket_subprotocols(scope: Scope) -> list[str]:
    """The subprotocols the client offered, in order."""
    return [p.strip() for p in Headers(scope=scope).get("sec-websocket-protocol", "").split(",") if p.strip()]


def websocket_auth_headers(scope: Scope) -> Headers:
    """The handshake's headers; without ``Authorization``, a key offered as a subprotocol becomes its bearer."""
    headers = Headers(scope=scope)
    if "authorization" in headers:
        return headers
    keys = [p[len(KEY_SUBPROTOCOL) :] for p in websocket_subprotocols(scope) if p.startswith(KEY_SUBPROTOCOL)]
    return Headers({"authorization": f"Bearer {keys[0]}"}) if keys else headers
