"""What the app serves: each model with its engine and voice catalogue, looked up by request name.

Built by the lifespan (``app.py``), read by the routes through ``request.app.state.registry``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from speechserve.engine import EngineConfig, TTSEngine
from speechserve.errors import ModelNotFound, UnsupportedFeature
from speechserve.server.settings import ServerSettings
from speechserve.server.voices import VOXTRAL_TTS_LICENSE, VoiceCatalog
from speechserve.tts.voxtral import VoxtralTTSPipeline


@dataclass
class ServedModel:
    """One loaded model and its engine. Lifetime: the app's lifespan."""

    names: list[str]
    """Accepted request ``model`` values; ``names[0]`` is the id ``/v1/models`` shows."""
    pipeline: VoxtralTTSPipeline
    engine: TTSEngine
    voices: VoiceCatalog
    license: str = VOXTRAL_TTS_LICENSE
    created: int = field(default_factory=lambda: int(time.time()))
    in_flight: dict[str, object] = field(default_factory=dict)
    """Speech generations being answered, by generation id (for metrics, tests and debugging)."""

    @property
    def id(self) -> str:
        return self.names[0]


class ModelRegistry:
    """Name → :class:`ServedModel`. The first model is the default for requests that name none."""

    def __init__(self, models: list[ServedModel]) -> None:
        self.models = models

    def get(self, name: str | None) -> ServedModel:
        if name is None or not name.strip():
            return self.models[0]
        for model in self.models:
            if name in model.names:
                return model
        names = ", ".join(n for m in self.models for n in m.names)
        raise ModelNotFound(f"The model {name!r} does not exist on this server; valid model names: {names}")


def load_served_model(settings: ServerSettings) -> ServedModel:
    """Load the checkpoint and build (not start) its engine. Blocking: run it in a worker thread."""
    import speechserve

    pipeline = speechserve.load(
        settings.model,
        device=settings.device,
        dtype=settings.dtype,
        tokenizer=settings.tokenizer,
        revision=settings.revision,
    )
    if not isinstance(pipeline, VoxtralTTSPipeline):
        kind = type(pipeline).__name__
        raise UnsupportedFeature(f"{settings.model} loads as {kind}; the server serves speech synthesis only")
    engine = TTSEngine(pipeline, EngineConfig(max_waiting=settings.max_waiting, max_batch=settings.max_batch))
    voices = VoiceCatalog(
        pipeline.voices, settings.voice_aliases, settings.default_voice, VOXTRAL_TTS_LICENSE
    )
    return ServedModel(settings.model_names(), pipeline, engine, voices)
