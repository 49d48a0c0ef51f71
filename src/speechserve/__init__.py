"""speechserve: run open speech models (Voxtral TTS, Voxtral ASR, Dia) from Python, the CLI or a server.

import speechserve
tts = speechserve.load("mistralai/Voxtral-4B-TTS-2603")
for chunk in tts.synthesize("Hello!", voice="casual_male"):
    play(chunk.samples, chunk.sample_rate)
"""

from speechserve.errors import (
    CheckpointError,
    EncoderWeightsMissing,
    InvalidRequest,
    ModelNotFound,
    SpeechServeError,
    UnknownVoice,
    UnsupportedFeature,
)
from speechserve.loading import load
from speechserve.options import AudioChunk, SynthesisOptions

__all__ = [
    "AudioChunk",
    "CheckpointError",
    "EncoderWeightsMissing",
    "InvalidRequest",
    "ModelNotFound",
    "SpeechServeError",
    "SynthesisOptions",
    "UnknownVoice",
    "UnsupportedFeature",
    "load",
]
__version__ = "0.1.0"
