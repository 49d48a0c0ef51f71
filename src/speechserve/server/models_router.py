"""``GET /v1/models`` (what is served, OpenAI's shape plus capabilities and license), ``GET /v1/audio/models``
(the speech models, for Open WebUI) and ``GET /health`` (start-up progress, then queue depth).

``capabilities`` lists the tasks a model answers: ``speech``, ``transcription``, ``translation``, ``chat``;
``sample_rate`` is its output rate (speech) or the rate it hears (speech-to-text). Models are shown by their
served ids, never by the path they were loaded from.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from speechserve.server.openapi import API, error_responses
from speechserve.server.startup import ModelState, Startup
from speechserve.server.state import ModelRegistry, ServedModel

v1 = APIRouter()
ops = APIRouter()


def model_card(model: ServedModel) -> dict:
    """One ``/v1/models`` entry."""
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": "speechserve",
        "root": model.pipeline.name or model.id,
        "aliases": model.names[1:],
        "capabilities": model.capabilities,
        "license": model.license,
        "sample_rate": model.pipeline.sample_rate,
        "voice_cloning": bool(getattr(model.pipeline, "supports_voice_cloning", False)),
    }


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


@v1.get("/v1/models", responses=error_responses(*API))
async def list_models(request: Request) -> dict:
    """The served models (each with the names a request's ``model`` may use)."""
    return {"object": "list", "data": [model_card(m) for m in _registry(request).models]}


@v1.get("/v1/audio/models", responses=error_responses(*API))
async def list_audio_models(request: Request) -> dict:
    """The models that speak (``POST /v1/audio/speech``), each a ``/v1/models`` entry plus ``name``.

    Shape: OpenAI's list, ``{"object": "list", "data": [...]}``, with the same entries also under
    ``models``: Open WebUI's OpenAI TTS settings read ``response["models"]`` (entries with ``id`` and an
    optional ``name``) from ``{base_url}/audio/models``. Behind the API key, like every ``/v1`` route."""
    cards = [model_card(m) | {"name": m.id} for m in _registry(request).models if m.supports("speech")]
    return {"object": "list", "data": cards, "models": cards}


@v1.get("/v1/models/{model_id:path}", responses=error_responses(*API, 404))
async def get_model(model_id: str, request: Request) -> dict:
    """One served model by any of its names; 404 in the error envelope otherwise."""
    return model_card(_registry(request).get(model_id))


class ModelProgress(BaseModel):
    """One model's start-up."""

    id: str
    state: ModelState
    seconds: float | None
    """Load plus warm-up time, once ready."""


class Health(BaseModel):
    """Body of ``GET /health``."""

    status: Literal["loading", "ok", "failed"]
    models: list[str]
    """The served model ids."""
    progress: list[ModelProgress]
    waiting: int
    """Sequences waiting for a batch slot (0 until ready)."""
    running: int
    """Sequences being generated (0 until ready)."""


@ops.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Still loading (`status: loading`) or failed to load"}},
)
async def health(request: Request) -> JSONResponse:
    """200 with queue depth once every model is loaded and warmed up; 503 with each model's progress before
    (``waiting``, ``loading``, ``warming_up``, ``ready``) or after a failed load (no authentication)."""
    startup: Startup = request.app.state.startup
    registry: ModelRegistry | None = request.app.state.registry
    stats = [m.engine.stats() for m in registry.models] if registry is not None else []
    status = startup.status
    if status == "ok" and registry is None:  # shutting down
        status = "loading"
    body = Health(
        status=status,
        models=[p.id for p in startup.progress],
        progress=[ModelProgress(**asdict(p)) for p in startup.progress],
        waiting=sum(s.waiting for s in stats),
        running=sum(s.running for s in stats),
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
