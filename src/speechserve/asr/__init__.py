"""Speech-to-text shared by every transcribing family: options and results, audio input, output formats.

import speechserve
asr = speechserve.load("mistralai/Voxtral-Mini-3B-2507")
print(asr.transcribe("talk.mp3", TranscriptionOptions(language="en")).text)
for delta in asr.transcribe_stream("talk.mp3"):
    print(delta.text, end="", flush=True)
"""

from speechserve.asr.audio_input import AudioInput
from speechserve.asr.formats import RESPONSE_FORMATS, format_transcription
from speechserve.asr.stream import TextStream
from speechserve.asr.types import (
    ChatOptions,
    ChatResult,
    Segment,
    TextDelta,
    Transcription,
    TranscriptionOptions,
    Usage,
)

__all__ = [
    "RESPONSE_FORMATS",
    "AudioInput",
    "ChatOptions",
    "ChatResult",
    "Segment",
    "TextDelta",
    "TextStream",
    "Transcription",
    "TranscriptionOptions",
    "Usage",
    "format_transcription",
]
