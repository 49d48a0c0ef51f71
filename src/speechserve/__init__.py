"""speechserve: run open speech models (Voxtral TTS, Voxtral ASR, Dia) from Python, the CLI or a server.

import speechserve
tts = speechserve.load("mistralai/Voxtral-4B-TTS-2603")
for chunk in tts.synthesize("Hello!", voice="casual_male"):
    play(chunk.samples, chunk.sample_rate)

asr = speechserve.load("mistralai/Voxtral-Mini-3B-2507")
print(asr.transcribe("talk.mp3", speechserve.TranscriptionOptions(language="en")).text)

The public names are imported on first use, so `import speechserve.cli` (the console script) and
`speechserve --help` do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from speechserve.errors import (
    CheckpointError,
    EncoderWeightsMissing,
    InvalidRequest,
    ModelNotFound,
    SpeechServeError,
    UnknownVoice,
    UnsupportedFeature,
)

if TYPE_CHECKING:
    from speechserve.asr import (
        ChatOptions,
        ChatResult,
        Segment,
        TextDelta,
        Transcription,
        TranscriptionOptions,
        Usage,
    )
    from speechserve.loading import load
    from speechserve.options import AudioChunk, SynthesisOptions

_LAZY = {
    **dict.fromkeys(
        (
            "ChatOptions",
            "ChatResult",
            "Segment",
            "TextDelta",
            "Transcription",
            "TranscriptionOptions",
            "Usage",
        ),
        "speechserve.asr",
    ),
    "load": "speechserve.loading",
    "AudioChunk": "speechserve.options",
    "SynthesisOptions": "speechserve.options",
}
"""Public name → the module that defines it (imported when the name is first used)."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'speechserve' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "AudioChunk",
    "ChatOptions",
    "ChatResult",
    "CheckpointError",
    "EncoderWeightsMissing",
    "InvalidRequest",
    "ModelNotFound",
    "Segment",
    "SpeechServeError",
    "SynthesisOptions",
    "TextDelta",
    "Transcription",
    "TranscriptionOptions",
    "UnknownVoice",
    "UnsupportedFeature",
    "Usage",
    "load",
]
__version__ = "0.1.0"
