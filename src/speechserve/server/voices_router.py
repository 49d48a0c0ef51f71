"""``GET /v1/audio/voices``: the served model's presets with language, gender, license and aliases (an empty
list for a model without presets)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from speechserve.server.openapi import API, error_responses
from speechserve.server.state import ModelRegistry

router = APIRouter()


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


@router.get("/v1/audio/voices", responses=error_responses(*API, 400, 404))
async def list_voices(
    registry: Annotated[ModelRegistry, Depends(_registry)],
    model: Annotated[
        str | None, Query(description="model whose voices to list (default: the first speech model)")
    ] = None,
    language: Annotated[str | None, Query(description="only voices of this ISO 639-1 language")] = None,
) -> dict:
    """Preset voices with language, gender, license and the aliases that reach them (none for a model without
    presets, such as Dia, whose speakers come from the text's tags or a cloned reference)."""
    catalog = registry.for_task(model, "speech").voices
    voices = catalog.list(language) if catalog is not None else []
    return {"object": "list", "voices": [asdict(v) for v in voices]}
