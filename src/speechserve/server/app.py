"""The app factory: ``create_app(settings)`` wires routes, auth, errors and metrics; the lifespan loads every
model, starts its engine and warms it up. Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from speechserve.server import metrics, models_router, voices_router
from speechserve.server.auth import require_api_key
from speechserve.server.chat import api_router as chat_router
from speechserve.server.chat.serving import ChatService
from speechserve.server.errors import install_error_handlers
from speechserve.server.metrics import RequestCounter, ServerMetrics
from speechserve.server.settings import ServerSettings
from speechserve.server.speech import api_router as speech_router
from speechserve.server.speech.serving import SpeechService
from speechserve.server.state import ModelRegistry, ServedModel, load_served_models
from speechserve.server.transcription import api_router as transcription_router
from speechserve.server.transcription.serving import TranscriptionService

log = logging.getLogger("speechserve.server")

EXPOSED_HEADERS = [
    "X-Generation-Id",
    "X-Usage-Input-Tokens",
    "X-Usage-Output-Tokens",
    "X-Usage-Total-Tokens",
    "X-Ignored-Fields",
    "X-Speech-Segments",
]


async def warm_up(model: ServedModel) -> None:
    """One tiny generation through the engine, so lazy initialisation happens before real traffic."""
    request = await asyncio.to_thread(model.pipeline.warmup_request)
    async for _ in model.engine.submit(request):
        pass


async def _start(models: list[ServedModel], settings: ServerSettings) -> None:
    for model in models:
        model.engine.start()
        if settings.warmup:
            await warm_up(model)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServerSettings = app.state.settings
    log.info("loading %s", ", ".join(settings.model))
    models = await asyncio.to_thread(load_served_models, settings)
    try:
        await _start(models, settings)
        registry = ModelRegistry(models)
        metrics = app.state.metrics
        app.state.speech = SpeechService(settings, registry, metrics)
        app.state.transcription = TranscriptionService(settings, registry, metrics)
        app.state.chat = ChatService(settings, registry, metrics)
        metrics.watch_engines([m.engine.stats for m in models])
        app.state.registry = registry
        for model in models:
            log.info("serving %s (%s) as %s", model.id, ", ".join(model.capabilities), ", ".join(model.names))
        yield
    finally:
        app.state.registry = None
        for model in models:
            await asyncio.to_thread(model.engine.stop)


def create_app(settings: ServerSettings) -> FastAPI:
    """A new, independent app for ``settings`` (its own metrics registry, engine and model)."""
    from speechserve import __version__

    app = FastAPI(title="speechserve", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = ServerMetrics()
    app.state.registry = None
    install_error_handlers(app)
    auth = [Depends(require_api_key)]
    routers = [(speech_router.router, auth), (transcription_router.router, auth), (chat_router.router, auth)]
    routers += [(voices_router.router, auth), (models_router.v1, auth)]
    routers += [(models_router.ops, []), (metrics.router, [])]
    for router, dependencies in routers:
        app.include_router(router, dependencies=dependencies)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
        )
    paths = {getattr(route, "path", "") for router, _ in routers for route in router.routes}
    app.add_middleware(RequestCounter, metrics=app.state.metrics, routes=lambda: paths)
    return app
