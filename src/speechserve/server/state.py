"""What the app serves: each model with its engine (and, for speech models, voice catalogue), looked up by
request name and checked for the task a route needs.

Built in the background once the lifespan has started (``startup.py``), read by the routes through
``request.app.state.registry``.

A model is shown (``/v1/models``, ``/health``, error messages) by its served id: the hub id, the local
directory's own name, or the first ``served_model_name``; the path of a local checkpoint given as ``--model``
is accepted in requests but never shown, so no response tells a client where the machine keeps its files.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from speechserve.engine import Engine, EngineConfig
from speechserve.errors import ModelNotFound, UnsupportedFeature, UnsupportedTask
from speechserve.registry import Family, family_of
from speechserve.server.settings import ServerSettings
from speechserve.server.voices import VoiceCatalog

log = logging.getLogger("speechserve.server")

Task = Literal["speech", "transcription", "translation", "chat", "realtime"]
TASK_ROUTES: dict[Task, str] = {
    "speech": "POST /v1/audio/speech",
    "transcription": "POST /v1/audio/transcriptions",
    "translation": "POST /v1/audio/translations",
    "chat": "POST /v1/chat/completions",
    "realtime": "WS /v1/realtime",
}


@dataclass
class ServedModel:
    """One loaded model and its engine. Lifetime: the app's lifespan."""

    names: list[str]
    """Accepted request ``model`` values that may be shown; ``names[0]`` is the id ``/v1/models`` shows."""
    pipeline: Any
    """The family's pipeline (``family.capabilities`` says which task protocols it implements)."""
    engine: Engine
    voices: VoiceCatalog | None = None
    """Preset voices of a speech model that has any (None for Dia, whose speakers come from the text's
    tags or a cloned reference: such a model takes ``voice=None`` and reports a requested voice ignored)."""
    license: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    in_flight: dict[str, object] = field(default_factory=dict)
    """Generations being answered, by generation id (for metrics, tests and debugging)."""
    hidden_names: tuple[str, ...] = ()
    """Further accepted request ``model`` values that are never shown (the checkpoint's path on this machine)."""

    def answers_to(self, name: str) -> bool:
        return name in self.names or name in self.hidden_names

    @property
    def id(self) -> str:
        return self.names[0]

    @property
    def family(self) -> Family:
        return family_of(self.pipeline)

    def supports(self, task: Task) -> bool:
        """The family's declared capability (``speech``, ``transcription``, ``chat`` …)."""
        return task in self.family.capabilities

    @property
    def capabilities(self) -> list[Task]:
        return [t for t in TASK_ROUTES if self.supports(t)]


class ModelRegistry:
    """Name → :class:`ServedModel`. For each task, the first model able to do it answers requests that
    name no model."""

    def __init__(self, models: list[ServedModel]) -> None:
        self.models = models

    def get(self, name: str | None) -> ServedModel:
        if name is None or not name.strip():
            return self.models[0]
        for model in self.models:
            if model.answers_to(name):
                return model
        names = ", ".join(n for m in self.models for n in m.names)
        raise ModelNotFound(f"The model {name!r} does not exist on this server; valid model names: {names}")

    def for_task(self, name: str | None, task: Task) -> ServedModel:
        """The model named ``name`` (or the first able to do ``task``), checked for ``task``.

        ModelNotFound (404) for an unknown name; UnsupportedTask (400) when it cannot do the task.
        """
        able = [m for m in self.models if m.supports(task)]
        if name is None or not name.strip():
            if not able:
                raise UnsupportedTask(f"no model on this server supports {TASK_ROUTES[task]}")
            return able[0]
        model = self.get(name)
        if not model.supports(task):
            can = ", ".join(m.id for m in able) or "none on this server"
            raise UnsupportedTask(
                f"The model {name!r} ({model.family.name}) does not support {TASK_ROUTES[task]}; "
                f"models that do: {can}"
            )
        return model


def name_models(models: list[ServedModel], settings: ServerSettings) -> None:
    """Once every model is loaded: OpenAI's aliases go to the first model of each task; a name two models
    share stays with the first."""
    _give_aliases(models, "speech", settings.model_aliases)
    _give_aliases(models, "transcription", settings.transcription_model_aliases)
    _drop_duplicate_names(models)


def request_names(settings: ServerSettings, index: int) -> tuple[list[str], tuple[str, ...]]:
    """``(shown names, hidden names)`` a request may use for ``settings.model[index]``: the served id first;
    the ``--model`` value itself is hidden when it is a path on this machine (it is not its own id)."""
    from speechserve.loading import model_id

    ref, served = settings.model[index], settings.served_id(index)
    names = list(dict.fromkeys([served, *settings.model_names(index)]))
    hidden = tuple(n for n in names if n == ref != served and model_id(ref) != ref)
    return [n for n in names if n not in hidden], hidden


def _set_cpu_threads(settings: ServerSettings) -> None:
    """Leave the event loop a core when generating on the CPU (see ``ServerSettings.cpu_threads``)."""
    import os

    import torch

    if settings.device not in (None, "cpu") or (settings.device is None and torch.cuda.is_available()):
        return
    torch.set_num_threads(settings.cpu_threads or max(1, (os.cpu_count() or 2) - 1))


def load_served_model(settings: ServerSettings, index: int = 0) -> ServedModel:
    """Load ``settings.model[index]`` and build its engine."""
    import speechserve

    ref = settings.model[index]
    _set_cpu_threads(settings)
    pipeline = speechserve.load(
        ref, device=settings.device, dtype=settings.dtype, tokenizer=settings.tokenizer, revision=settings.revision, isq=settings.isq, codec=settings.codec
    )  # fmt: skip
    names, hidden = request_names(settings, index)
    family = family_of(pipeline)
    text_model = bool({"transcription", "chat"} & family.capabilities)
    if text_model:
        pipeline.max_audio_seconds = settings.max_audio_seconds
    config = EngineConfig(
        max_waiting=settings.max_waiting,
        max_batch=settings.max_batch,
        max_seq_len=settings.asr_max_seq_len if text_model else EngineConfig.max_seq_len,
        eager=settings.eager,
    )
    if family.program is None:
        raise UnsupportedFeature(f"{names[0]}: the {family.name} family cannot be served yet")
    voices = None
    if "speech" in family.capabilities and getattr(pipeline, "voices", None):
        voices = VoiceCatalog(pipeline.voices, settings.voice_aliases, settings.default_voice, family.license)
    engine = Engine(pipeline, config)
    return ServedModel(names, pipeline, engine, voices, license=family.license, hidden_names=hidden)


def _give_aliases(models: list[ServedModel], task: Task, aliases: list[str]) -> None:
    """OpenAI's model names for ``task`` go to the first model that can do it."""
    for model in models:
        if model.supports(task):
            model.names = list(dict.fromkeys([*model.names, *aliases]))
            return


def _drop_duplicate_names(models: list[ServedModel]) -> None:
    """A name two models share stays with the first (a warning says so)."""
    taken: set[str] = set()
    for model in models:
        clash = [n for n in model.names[1:] if n in taken]
        if clash:
            log.warning(
                "model %s: names already used by another model dropped: %s", model.id, ", ".join(clash)
            )
        if model.names[0] in taken:
            raise ValueError(f"two served models are both called {model.names[0]!r}; set served_model_name")
        model.names = [n for n in model.names if n not in taken]
        model.hidden_names = tuple(n for n in model.hidden_names if n not in taken)
        taken.update(model.names, model.hidden_names)
