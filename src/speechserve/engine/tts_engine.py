"""The async TTS engine: a bounded inbox in front of one thread that steps :class:`EngineCore`.

Interface for the server (and any asyncio caller): ``start()``, ``stop()``, ``stats()``, and
``submit(request) -> AudioStream`` (validates at once; ``Overloaded`` when the waiting queue is full).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from speechserve.engine.engine_core import EngineConfig, EngineCore
from speechserve.engine.request import SpeechRequest
from speechserve.engine.sequence import Sequence
from speechserve.engine.stream import AudioStream
from speechserve.errors import EngineDead, Overloaded
from speechserve.tts.voxtral import VoxtralTTSPipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineStats:
    waiting: int
    running: int


class TTSEngine:
    """Owns the engine thread. Lifetime: between ``start()`` and ``stop()``."""

    def __init__(self, pipeline: VoxtralTTSPipeline, config: EngineConfig | None = None) -> None:
        self.pipeline = pipeline
        self.config = config or EngineConfig()
        self.core = EngineCore(pipeline, self.config)
        self._inbox: queue.SimpleQueue[Sequence | None] = queue.SimpleQueue()
        self._pending = 0  # submitted, not yet taken by the engine thread
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dead: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speechserve-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def stats(self) -> EngineStats:
        return EngineStats(waiting=self._pending + self.core.n_waiting, running=self.core.n_running)

    def submit(self, request: SpeechRequest) -> AudioStream:
        """Validate and enqueue; call from the event loop that will consume the stream."""
        if self._dead is not None or self._thread is None:
            raise EngineDead("the speech engine is not running")
        prompt = self.pipeline.prompt(request.text, request.voice, request.ref_audio)
        stream = AudioStream(request.request_id, len(prompt[0]), asyncio.get_running_loop())
        seq = self.core.make_sequence(request, stream, prompt)
        with self._lock:
            if self._pending + self.core.n_waiting >= self.config.max_waiting:
                raise Overloaded(f"{self.config.max_waiting} requests are already waiting; retry later")
            self._pending += 1
        self._inbox.put(seq)
        return stream

    def _take(self, block: bool) -> bool:
        """Move submissions into the core; False when asked to stop."""
        while True:
            try:
                seq = self._inbox.get(block=block)
            except queue.Empty:
                return True
            if seq is None:
                return False
            with self._lock:
                self._pending -= 1
            self.core.add(seq)
            block = False

    def _run(self) -> None:
        try:
            while self._take(block=not self.core.has_work):
                if self.core.has_work:
                    self.core.step()
        except BaseException as exc:  # the loop itself broke: fail everything still in flight
            log.exception("speech engine loop died")
            self._dead = exc
            for seq in [*self.core.scheduler.waiting, *self.core.scheduler.running]:
                seq.sink.fail(EngineDead(f"the speech engine stopped: {exc}"))
            raise
