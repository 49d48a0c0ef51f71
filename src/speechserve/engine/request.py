"""What a caller asks the engine for (speech or text), and what it is charged for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from speechserve.options import RefAudio, SynthesisOptions


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


@dataclass(frozen=True)
class ASRRequest:
    """One prompt to answer with text: a transcription chunk or an audio chat, with its own sampling."""

    prompt: Any
    """The family's prompt (for Voxtral: an ``AudioPrompt`` of ids and the audios behind them)."""
    max_tokens: int
    """Most ids to generate (the end-of-sequence id included); the engine also stops at its context."""
    temperature: float = 0.0
    """0: greedy (argmax, as the reference); above 0: softmax(logits / T) within the top-p nucleus."""
    top_p: float = 1.0
    seed: int | None = None
    """Seed of this request's own ``torch.Generator``: its ids never depend on the rest of the batch."""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
