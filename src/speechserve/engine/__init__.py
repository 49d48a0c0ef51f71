"""The serving engine: request state, scheduling, batched model steps, streamed codec output.

Knows nothing about HTTP; the SDK, CLI and server all drive it.
"""

from speechserve.engine.engine_core import EngineConfig, EngineCore
from speechserve.engine.request import SpeechRequest, Usage
from speechserve.engine.stream import AudioStream
from speechserve.engine.tts_engine import EngineStats, TTSEngine

__all__ = ["AudioStream", "EngineConfig", "EngineCore", "EngineStats", "SpeechRequest", "TTSEngine", "Usage"]
