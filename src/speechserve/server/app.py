"""The app factory: ``create_app(settings)`` wires routes, auth, errors and metrics; the lifespan loads the
model, starts its engine and warms it up. Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from speechserve.engine import SpeechRequest
from speechserve.options import SynthesisOptions
from speechserve.server import metrics, models_router, voices_router
from speechserve.server.auth import require_api_key
from speechserve.server.errors import install_error_handlers
from speechserve.server.metrics import RequestCounter, ServerMetrics
from speechserve.server.settings import ServerSettings
from speechserve.server.speech import api_router as speech_router
from speechserve.server.speech.serving import SpeechService
from speechserve.server.state import ModelRegistry, ServedModel, load_served_model

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
    """One two-frame generation through the engine, so lazy initialisation happens before real traffic."""
    options = SynthesisOptions(seed=0, max_frames=2)
    stream = model.engine.submit(SpeechRequest("Warm-up.", model.voices.default, None, options))
    await stream.collect()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServerSettings = app.state.settings
    log.info("loading %s", settings.model)
    model = await asyncio.to_thread(load_served_model, settings)
    model.engine.start()
    try:
        if settings.warmup:
            await warm_up(model)
        registry = ModelRegistry([model])
        app.state.speech = SpeechService(settings, registry, app.state.metrics)
        app.state.metrics.watch_engine(model.engine.stats)
        app.state.registry = registry
        log.info("serving %s as %s", settings.model, ", ".join(model.names))
        yield
    finally:
        app.state.registry = None
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
    routers = [(speech_router.router, auth), (voices_router.router, auth), (models_router.v1, auth)]
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
