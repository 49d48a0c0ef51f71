"""The TTS engine: a bounded waiting queue in front of a model thread that streams chunks back.

Interface used by the server and SDK: ``submit(request) -> AudioStream`` (validates at once, raises
``Overloaded`` when the queue is full), ``start()``, ``stop()``, ``stats()``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from speechserve.engine.request import SpeechRequest
from speechserve.engine.stream import AudioStream
from speechserve.errors import EngineDead, Overloaded
from speechserve.tts.voxtral import VoxtralTTSPipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """Engine limits."""

    max_waiting: int = 64
    """Requests allowed to wait for a slot; one more gets ``Overloaded`` (HTTP 429)."""
    max_batch: int = 32
    """Sequences generated together in one step."""


@dataclass(frozen=True)
class EngineStats:
    waiting: int
    running: int


@dataclass
class _Job:
    request: SpeechRequest
    stream: AudioStream
    prompt: tuple[list[int], object]


class TTSEngine:
    """Owns the model thread. Lifetime: between ``start()`` and ``stop()``."""

    def __init__(self, pipeline: VoxtralTTSPipeline, config: EngineConfig | None = None) -> None:
        self.pipeline = pipeline
        self.config = config or EngineConfig()
        self._waiting: queue.Queue[_Job | None] = queue.Queue(maxsize=self.config.max_waiting)
        self._running = 0
        self._thread: threading.Thread | None = None
        self._dead: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="speechserve-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._waiting.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def stats(self) -> EngineStats:
        return EngineStats(waiting=self._waiting.qsize(), running=self._running)

    def submit(self, request: SpeechRequest) -> AudioStream:
        """Validate and enqueue; must be called from the event loop that will consume the stream."""
        if self._dead is not None or self._thread is None:
            raise EngineDead("the speech engine is not running")
        prompt = self.pipeline.prompt(request.text, request.voice, request.ref_audio)
        stream = AudioStream(request.request_id, len(prompt[0]), asyncio.get_running_loop())
        try:
            self._waiting.put_nowait(_Job(request, stream, prompt))
        except queue.Full:
            raise Overloaded(f"{self.config.max_waiting} requests are already waiting; retry later") from None
        return stream

    def _loop(self) -> None:
        while True:
            job = self._waiting.get()
            if job is None:
                return
            self._running = 1
            try:
                self._run(job)
            except Exception as exc:  # a bad request must never take the engine down
                log.exception("request %s failed", job.request.request_id)
                job.stream.fail(exc)
            finally:
                self._running = 0

    def _run(self, job: _Job) -> None:
        req, stream = job.request, job.stream
        if stream.cancelled:
            return stream.close()
        for chunk in self.pipeline.synthesize(req.text, req.voice, req.options, req.ref_audio):
            if stream.cancelled:
                break
            stream.usage.output_tokens += chunk.n_frames
            stream.deliver(chunk)
        stream.close()
