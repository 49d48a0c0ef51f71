"""The async ASR engine: a bounded inbox in front of one thread that steps :class:`ASREngineCore`.

Interface for the server (and any asyncio caller): ``start()``, ``stop()``, ``stats()``, and
``submit(request) -> TokenStream`` (validates at once; ``Overloaded`` when the waiting queue is full).
Mirrors :class:`~speechserve.engine.tts_engine.TTSEngine`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading

from speechserve.asr.pipeline import VoxtralASRPipeline
from speechserve.engine.asr_core import ASREngineCore
from speechserve.engine.asr_sequence import ASRRequest, ASRSequence
from speechserve.engine.engine_core import EngineConfig
from speechserve.engine.token_stream import TokenStream
from speechserve.engine.tts_engine import EngineStats
from speechserve.errors import EngineDead, Overloaded

log = logging.getLogger(__name__)


class ASREngine:
    """Owns the ASR engine thread. Lifetime: between ``start()`` and ``stop()``."""

    def __init__(self, pipeline: VoxtralASRPipeline, config: EngineConfig | None = None) -> None:
        self.pipeline = pipeline
        self.config = config or EngineConfig()
        self.core = ASREngineCore(pipeline, self.config)
        self._inbox: queue.SimpleQueue[ASRSequence | None] = queue.SimpleQueue()
        self._pending = 0  # submitted, not yet taken by the engine thread
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dead: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speechserve-asr-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def stats(self) -> EngineStats:
        return EngineStats(waiting=self._pending + self.core.n_waiting, running=self.core.n_running)

    def submit(self, request: ASRRequest) -> TokenStream:
        """Validate and enqueue; call from the event loop that will consume the stream."""
        if self._dead is not None or self._thread is None:
            raise EngineDead("the ASR engine is not running")
        stream = TokenStream(request.request_id, len(request.prompt.ids), asyncio.get_running_loop())
        seq = self.core.make_sequence(request, stream)
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
            log.exception("ASR engine loop died")
            self._dead = exc
            for seq in [*self.core.scheduler.waiting, *self.core.scheduler.running]:
                seq.sink.fail(EngineDead(f"the ASR engine stopped: {exc}"))
            raise
