"""The serving engine: request state, scheduling, batched model steps, streamed codec output.

Knows nothing about HTTP; the SDK, CLI and server all drive it. ``TTSEngine`` generates speech frames,
``ASREngine`` generates text ids; both run a bounded queue on one worker thread over slotted KV caches.
"""

from speechserve.engine.asr_engine import ASREngine
from speechserve.engine.asr_sequence import ASRRequest
from speechserve.engine.engine_core import EngineConfig, EngineCore
from speechserve.engine.request import SpeechRequest, Usage
from speechserve.engine.stream import AudioStream
from speechserve.engine.token_stream import GeneratedToken, TokenStream
from speechserve.engine.tts_engine import EngineStats, TTSEngine

__all__ = [
    "ASREngine",
    "ASRRequest",
    "AudioStream",
    "EngineConfig",
    "EngineCore",
    "EngineStats",
    "GeneratedToken",
    "SpeechRequest",
    "TTSEngine",
    "TokenStream",
    "Usage",
]
