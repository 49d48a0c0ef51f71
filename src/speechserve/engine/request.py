"""What a caller asks the engine for, and what it is charged for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from speechserve.options import SynthesisOptions
from speechserve.tts.voxtral import RefAudio


@dataclass(frozen=True)
class SpeechRequest:
    """One utterance to synthesize. ``voice`` None means the model's default preset."""

    text: str
    voice: str | None = None
    ref_audio: RefAudio | None = None
    options: SynthesisOptions = field(default_factory=SynthesisOptions)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Usage:
    """Token accounting of one request: prompt tokens in, audio frames (80 ms each) out."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
