"""Prometheus metrics of one app instance (own registry: two apps in a process never share counters).

``GET /metrics`` serves: HTTP requests by route and status, errors by type, engine queue depth and running
sequences (all models), in-flight and cancelled speech requests, time to first audio, real-time factor, audio
seconds; for speech-to-text: in-flight and cancelled requests, audio seconds heard, text tokens generated.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from speechserve.engine import EngineStats

_TTFA_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class ServerMetrics:
    """The app's collectors. Lifetime: the app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "speechserve_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=reg,
        )
        self.errors = Counter("speechserve_errors", "Errors answered, by error type", ["type"], registry=reg)
        self.waiting = Gauge("speechserve_queue_waiting", "Sequences waiting for a batch slot", registry=reg)
        self.running = Gauge("speechserve_queue_running", "Sequences being generated", registry=reg)
        self.in_flight = Gauge("speechserve_speech_in_flight", "Speech requests being answered", registry=reg)
        self.cancelled = Counter(
            "speechserve_speech_cancelled", "Speech requests stopped early (client went away)", registry=reg
        )
        self.ttfa = Histogram(
            "speechserve_time_to_first_audio_seconds",
            "Request arrival to first generated audio",
            buckets=_TTFA_BUCKETS,
            registry=reg,
        )
        self.rtf = Histogram(
            "speechserve_real_time_factor",
            "Generation wall time / generated audio duration (lower is faster; < 1 is faster than real time)",
            buckets=_RTF_BUCKETS,
            registry=reg,
        )
        self.audio_seconds = Counter("speechserve_audio_seconds", "Audio generated, seconds", registry=reg)
        self.text_in_flight = Gauge(
            "speechserve_text_in_flight", "Transcription and audio-chat requests being answered", registry=reg
        )
        self.text_cancelled = Counter(
            "speechserve_text_cancelled", "Transcription and chat requests stopped early", registry=reg
        )
        self.audio_input_seconds = Counter(
            "speechserve_audio_input_seconds",
            "Audio heard (transcription and chat inputs), seconds",
            registry=reg,
        )
        self.text_tokens = Counter("speechserve_text_tokens", "Text tokens generated", registry=reg)
        self.frames = Counter(
            "speechserve_output_frames", "80 ms frames generated (output tokens)", registry=reg
        )

    def watch_engines(self, stats: list[Callable[[], EngineStats]]) -> None:
        """Read queue depth, summed over every model's engine, from ``stats()`` at every scrape."""
        self.waiting.set_function(lambda: float(sum(s().waiting for s in stats)))
        self.running.set_function(lambda: float(sum(s().running for s in stats)))


class RequestCounter:
    """Pure ASGI middleware counting HTTP responses (pure ASGI: it leaves streaming and disconnects alone)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, routes: Callable[[], set[str]]) -> None:
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        route = path if path in self.routes() else "other"

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route=route, status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
