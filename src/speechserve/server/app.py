"""The app factory: ``create_app(settings)`` wires routes, the request gate (API key, body caps, readiness),
errors, metrics and the OpenAPI schema. Its lifespan starts loading the models in the background
(``startup.py``), so the port opens at once and ``/health`` reports progress; the services are built once
every model is up. Nothing happens at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from speechserve.server import metrics, models_router, voices_router
from speechserve.server.chat import api_router as chat_router
from speechserve.server.chat.serving import ChatService
from speechserve.server.errors import install_error_handlers
from speechserve.server.gate import Gate
from speechserve.server.metrics import RequestCounter, ServerMetrics
from speechserve.server.openapi import install_openapi
from speechserve.server.realtime import api_router as realtime_router
from speechserve.server.settings import ServerSettings
from speechserve.server.speech import api_router as speech_router
from speechserve.server.speech import stream_ws as speech_stream_router
from speechserve.server.speech.serving import SpeechService
from speechserve.server.startup import ModelLoader, Startup
from speechserve.server.state import ModelRegistry, ServedModel, load_served_model
from speechserve.server.transcription import api_router as transcription_router
from speechserve.server.transcription.serving import TranscriptionService
from speechserve.server.web import router as web_router

log = logging.getLogger("speechserve.server")

EXPOSED_HEADERS = [
    "X-Generation-Id",
    "X-Usage-Input-Tokens",
    "X-Usage-Output-Tokens",
    "X-Usage-Total-Tokens",
    "X-Ignored-Fields",
    "X-Speech-Segments",
    "X-Speechserve-Replica",  # added outside the app by speechserve.scale (Ray Serve replicas)
]


def _serve(app: FastAPI, models: list[ServedModel]) -> None:
    """Every model is loaded and started: build the services and open the API."""
    settings, metrics = app.state.settings, app.state.metrics
    registry = ModelRegistry(models)
    app.state.speech = SpeechService(settings, registry, metrics)
    app.state.transcription = TranscriptionService(settings, registry, metrics)
    app.state.chat = ChatService(settings, registry, metrics)
    metrics.watch_engines([m.engine.stats for m in models])
    app.state.registry = registry
    for model in models:
        log.info("serving %s (%s) as %s", model.id, ", ".join(model.capabilities), ", ".join(model.names))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    startup: Startup = app.state.startup
    startup.start(partial(_serve, app))
    try:
        yield
    finally:
        app.state.registry = None
        await startup.stop()


def create_app(settings: ServerSettings, loader: ModelLoader = load_served_model) -> FastAPI:
    """A new, independent app for ``settings`` (its own metrics registry, engines and models).

    ``loader`` loads one model, ``(settings, index) → ServedModel`` (blocking; run in a worker thread): the
    default reads ``settings.model[index]``; tests and embedders may wrap it, e.g. to watch start-up."""
    from speechserve import __version__

    app = FastAPI(title="speechserve", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = ServerMetrics()
    app.state.registry = None
    app.state.startup = Startup(settings, loader)
    install_error_handlers(app)
    routers = [speech_router.router, transcription_router.router, chat_router.router, voices_router.router]
    routers += [models_router.v1, models_router.ops, metrics.router]
    for router in routers:
        app.include_router(router)
    app.include_router(realtime_router.router)  # WS /v1/realtime (not in the OpenAPI schema)
    app.include_router(speech_stream_router.router)  # WS /v1/audio/speech/stream (idem)
    app.include_router(web_router.router)  # GET / and /static/*: the playground (open without a key)
    install_openapi(app)
    app.add_middleware(
        Gate, settings=settings, startup=app.state.startup, metrics=app.state.metrics,
        upload_paths=transcription_router.UPLOAD_PATHS,
    )  # fmt: skip
    if settings.cors_origins:  # outside the gate: a CORS preflight needs no key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
        )
    paths = {getattr(route, "path", "") for router in routers for route in router.routes}
    app.add_middleware(RequestCounter, metrics=app.state.metrics, routes=lambda: paths)
    return app
