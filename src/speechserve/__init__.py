"""speechserve: run open speech models (Voxtral TTS, Voxtral ASR, Dia) from Python, the CLI or a server.

import speechserve
tts = speechserve.load("mistralai/Voxtral-4B-TTS-2603")
for chunk in tts.synthesize("Hello!", voice="casual_male"):
    play(chunk.samples, chunk.sample_rate)

asr = speechserve.load("mistralai/Voxtral-Mini-3B-2507")
print(asr.transcribe("talk.mp3", speechserve.TranscriptionOptions(language="en")).text)
"""

from speechserve.asr import (
    ChatOptions,
    ChatResult,
    Segment,
    TextDelta,
    Transcription,
    TranscriptionOptions,
    Usage,
)
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
