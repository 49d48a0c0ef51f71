"""Start-up: the models load in the background once the lifespan has started, so the port opens at once.

Until every model is loaded, its engine started and warmed up, ``GET /health`` answers 503
``{"status": "loading", "progress": [...]}`` (each model ``waiting``, ``loading``, ``warming_up`` or
``ready``) and the API routes answer 503 ``loading`` with ``Retry-After`` (the request gate, ``gate.py``,
asks :meth:`Startup.refusal`). Each model's load and warm-up are logged with their durations.

A model that fails to load is logged with its reason and traceback; the server then answers 503
``model_load_failed`` until it is restarted. The reason stays in the log: it can name the machine's paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from speechserve.errors import SpeechServeError
from speechserve.server.errors import ModelsFailed, ModelsLoading
from speechserve.server.settings import ServerSettings
from speechserve.server.state import ServedModel, load_served_model, name_models

log = logging.getLogger("speechserve.server")

ModelLoader = Callable[[ServerSettings, int], ServedModel]
"""``(settings, index)`` → ``settings.model[index]`` loaded, its engine built but not started. Blocking."""
ModelState = Literal["waiting", "loading", "warming_up", "ready", "failed"]


@dataclass
class ModelProgress:
    """Where one model is in its start-up (an entry of ``/health``'s ``progress``)."""

    id: str
    state: ModelState = "waiting"
    seconds: float | None = None
    """Load plus warm-up time, once ready."""


async def warm_up(model: ServedModel) -> None:
    """One tiny generation through the engine, so lazy initialisation happens before real traffic."""
    request = await asyncio.to_thread(model.pipeline.warmup_request)
    async for _ in model.engine.submit(request):
        pass


class Startup:
    """Loads and starts every model in the background, and says whether the app can answer yet.

    Lifetime: the app (created by ``create_app``, run by its lifespan)."""

    def __init__(self, settings: ServerSettings, loader: ModelLoader = load_served_model) -> None:
        self.settings, self.loader = settings, loader
        self.progress = [ModelProgress(settings.served_id(i)) for i in range(len(settings.model))]
        ids = [p.id for p in self.progress]
        if len(set(ids)) < len(ids):
            raise ValueError(f"two served models would both be called one of {ids}; set served_model_name")
        self.models: list[ServedModel] = []
        self.failed = False
        self.ready = False
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> Literal["loading", "ok", "failed"]:
        return "failed" if self.failed else "ok" if self.ready else "loading"

    def refusal(self) -> SpeechServeError | None:
        """What an API request is answered while the app cannot serve it (None once ready)."""
        if self.failed:
            return ModelsFailed("a model failed to load; the server cannot answer until it is restarted")
        if not self.ready:
            done = sum(p.state == "ready" for p in self.progress)
            return ModelsLoading(f"the server is loading its models ({done} of {len(self.progress)} ready)")
        return None

    def start(self, on_ready: Callable[[list[ServedModel]], None]) -> None:
        """Begin loading in the background; ``on_ready(models)`` runs on the event loop once all are up."""
        self._task = asyncio.create_task(self._run(on_ready), name="speechserve-startup")

    async def wait(self) -> None:
        """Until loading has finished (ready or failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop loading (a load already running in its thread finishes first) and every started engine."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.ready = False
        for model in self.models:
            await asyncio.to_thread(model.engine.stop)

    async def _run(self, on_ready: Callable[[list[ServedModel]], None]) -> None:
        begun = time.perf_counter()
        for index, progress in enumerate(self.progress):
            try:
                await self._bring_up(index, progress)
            except Exception:
                progress.state, self.failed = "failed", True
                log.exception("loading model %s failed; the server answers 503 until restarted", progress.id)
                return
        name_models(self.models, self.settings)
        on_ready(self.models)
        self.ready = True
        log.info("all %d model(s) ready in %.1f s", len(self.models), time.perf_counter() - begun)

    async def _bring_up(self, index: int, progress: ModelProgress) -> None:
        total = len(self.progress)
        progress.state = "loading"
        start = time.perf_counter()
        log.info("loading model %s (%d of %d)", progress.id, index + 1, total)
        model = await asyncio.to_thread(self.loader, self.settings, index)
        loaded = time.perf_counter()
        log.info("loaded model %s in %.1f s", progress.id, loaded - start)
        model.engine.start()
        self.models.append(model)
        if self.settings.warmup:
            progress.state = "warming_up"
            await warm_up(model)
            log.info("warmed up model %s in %.1f s", progress.id, time.perf_counter() - loaded)
        progress.state, progress.seconds = "ready", round(time.perf_counter() - start, 3)
