"""The serving engine, one for every model family: bounded queue, KV slots from a budget, chunked prefill,
one batched step per iteration, cancellation, failure isolation, streamed outputs.

Knows nothing about HTTP and no family: the SDK, CLI and server drive it; a family plugs in its
:class:`~speechserve.engine.program.Program` (see ``program.py``). ``EngineCore`` is the loop,
``Engine`` runs it on a thread for asyncio callers.
"""

from speechserve.engine.core import EngineConfig, EngineCore, EngineCounters
from speechserve.engine.program import Program, Sequence, Status
from speechserve.engine.request import ASRRequest, SpeechRequest, Usage
from speechserve.engine.stream import AudioStream
from speechserve.engine.token_stream import GeneratedToken, TokenStream
from speechserve.engine.worker import Engine, EngineStats

__all__ = [
    "ASRRequest",
    "AudioStream",
    "Engine",
    "EngineConfig",
    "EngineCore",
    "EngineCounters",
    "EngineStats",
    "GeneratedToken",
    "Program",
    "Sequence",
    "SpeechRequest",
    "Status",
    "TokenStream",
    "Usage",
]
