"""The async TTS engine: ``submit(request) -> AudioStream`` on top of the shared engine thread.

Interface for the server (and any asyncio caller): ``start()``, ``stop()``, ``stats()``, and ``submit``
(validates at once; ``Overloaded`` when the waiting queue is full).
"""

from __future__ import annotations

import asyncio

from speechserve.engine.engine_core import EngineConfig, EngineCore
from speechserve.engine.request import SpeechRequest
from speechserve.engine.stream import AudioStream
from speechserve.engine.worker import EngineStats, EngineWorker
from speechserve.tts.voxtral import VoxtralTTSPipeline

__all__ = ["EngineConfig", "EngineStats", "TTSEngine"]


class TTSEngine(EngineWorker):
    """Streams speech for many concurrent requests from one engine thread."""

    name = "speech engine"

    def __init__(self, pipeline: VoxtralTTSPipeline, config: EngineConfig | None = None) -> None:
        config = config or EngineConfig()
        super().__init__(EngineCore(pipeline, config), config)
        self.pipeline = pipeline

    def submit(self, request: SpeechRequest) -> AudioStream:
        """Validate and enqueue; call from the event loop that will consume the stream."""
        self._check_alive()
        prompt = self.pipeline.prompt(request.text, request.voice, request.ref_audio)
        stream = AudioStream(request.request_id, len(prompt[0]), asyncio.get_running_loop())
        self._enqueue(self.core.make_sequence(request, stream, prompt))
        return stream
