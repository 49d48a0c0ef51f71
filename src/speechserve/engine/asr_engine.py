"""The async ASR engine: a bounded inbox in front of one thread that steps :class:`ASREngineCore`.

Interface for the server (and any asyncio caller): ``start()``, ``stop()``, ``stats()``, and
``submit(request) -> TokenStream`` (validates at once; ``Overloaded`` when the waiting queue is full).
The thread and queue are :class:`~speechserve.engine.worker.EngineWorker`'s, shared with the TTS engine.
"""

from __future__ import annotations

import asyncio

from speechserve.asr.pipeline import VoxtralASRPipeline
from speechserve.engine.asr_core import ASREngineCore
from speechserve.engine.asr_sequence import ASRRequest
from speechserve.engine.engine_core import EngineConfig
from speechserve.engine.token_stream import TokenStream
from speechserve.engine.worker import EngineWorker


class ASREngine(EngineWorker):
    """Streams tokens for many concurrent transcription/chat requests from one engine thread."""

    name = "ASR engine"

    def __init__(self, pipeline: VoxtralASRPipeline, config: EngineConfig | None = None) -> None:
        config = config or EngineConfig()
        super().__init__(ASREngineCore(pipeline, config), config)
        self.pipeline = pipeline

    def submit(self, request: ASRRequest) -> TokenStream:
        """Validate and enqueue; call from the event loop that will consume the stream."""
        self._check_alive()
        stream = TokenStream(request.request_id, len(request.prompt.ids), asyncio.get_running_loop())
        self._enqueue(self.core.make_sequence(request, stream))
        return stream
