"""``GET /v1/models`` (what is served, OpenAI's shape plus capabilities and license) and ``GET /health``.

``capabilities`` lists the tasks a model answers: ``speech``, ``transcription``, ``translation``, ``chat``;
``sample_rate`` is its output rate (speech) or the rate it hears (speech-to-text).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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


@v1.get("/v1/models")
async def list_models(request: Request) -> dict:
    """The served models (each with the names a request's ``model`` may use)."""
    return {"object": "list", "data": [model_card(m) for m in _registry(request).models]}


@v1.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict:
    """One served model by any of its names; 404 in the error envelope otherwise."""
    return model_card(_registry(request).get(model_id))


@ops.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 with queue depth once the models are loaded and warmed up (no authentication)."""
    registry: ModelRegistry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    stats = [m.engine.stats() for m in registry.models]
    return JSONResponse(
        {
            "status": "ok",
            "models": [m.id for m in registry.models],
            "waiting": sum(s.waiting for s in stats),
            "running": sum(s.running for s in stats),
        }
    )
