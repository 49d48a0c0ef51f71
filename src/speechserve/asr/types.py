"""Typed options and results of speech-to-text: frozen, documented, replaced with `dataclasses.replace`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from speechserve.errors import InvalidRequest

DEFAULT_MAX_TOKENS_PER_CHUNK = 512
"""Generated-token cap per 30 s of audio when ``max_tokens`` is None: far above any speaking rate
(~130 tokens per 30 s of fast speech), low enough to stop a greedy repetition loop."""
DEFAULT_CHAT_MAX_TOKENS = 4096


def _check_sampling(temperature: float, top_p: float, max_tokens: int | None) -> None:
    if not 0.0 <= temperature <= 2.0:
        raise InvalidRequest("temperature must be between 0 and 2", param="temperature")
    if not 0.0 < top_p <= 1.0:
        raise InvalidRequest("top_p must be in (0, 1]", param="top_p")
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")


@dataclass(frozen=True)
class TranscriptionOptions:
    """How to transcribe one audio. Defaults reproduce the reference (greedy, one prompt per 30 s chunk)."""

    language: str | None = None
    """ISO-639-1 code of the spoken language (`lang:xx` in the prompt); None lets the model detect it."""
    temperature: float = 0.0
    """0 decodes greedily; above 0 samples from softmax(logits / temperature)."""
    top_p: float = 1.0
    """Nucleus sampling mass (only used when temperature > 0)."""
    seed: int | None = None
    """Seed of the request's own sampling generator; same seed → same text. None: random."""
    max_tokens: int | None = None
    """Cap on generated tokens per segment; None: 512 per 30 s of audio in the prompt."""
    segment_chunks: bool = True
    """True: every 30 s chunk is its own prompt and segment (bounded memory, timed segments, text streams
    chunk by chunk); False: the whole audio is one prompt and one segment, exactly as vLLM serves it."""

    def __post_init__(self) -> None:
        _check_sampling(self.temperature, self.top_p, self.max_tokens)
        if self.language is not None and not re.fullmatch(r"[a-z]{2}", self.language):
            raise InvalidRequest(
                f"language must be an ISO-639-1 code such as 'en', got {self.language!r}", param="language"
            )


@dataclass(frozen=True)
class ChatOptions:
    """How to answer an audio chat."""

    temperature: float = 0.0
    """0 decodes greedily; above 0 samples from softmax(logits / temperature)."""
    top_p: float = 1.0
    """Nucleus sampling mass (only used when temperature > 0)."""
    seed: int | None = None
    """Seed of the request's own sampling generator. None: random."""
    max_tokens: int | None = None
    """Cap on generated tokens; None: 4096 (and never past the model's context)."""

    def __post_init__(self) -> None:
        _check_sampling(self.temperature, self.top_p, self.max_tokens)


@dataclass(frozen=True)
class TextDelta:
    """A piece of generated text, in order; joining every delta of a stream gives the final text."""

    text: str
    segment: int = 0
    """Index of the segment (30 s chunk) the text belongs to."""


@dataclass(frozen=True)
class Usage:
    """What a request consumed."""

    audio_seconds: float
    """Duration of the input audio (before padding)."""
    prompt_tokens: int
    completion_tokens: int
    """Generated tokens, the end-of-sequence token included."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Segment:
    """The text of one processed 30 s chunk. Voxtral gives no word timings: times are chunk boundaries."""

    id: int
    start: float
    """Seconds from the start of the audio."""
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    """Generated ids (end-of-sequence excluded)."""
    avg_logprob: float = 0.0
    """Mean log-probability of the generated ids under the model's (untempered) distribution."""
    finish_reason: str = "stop"
    """"stop" (end of sequence) or "length" (``max_tokens`` reached)."""


@dataclass(frozen=True)
class Transcription:
    """A finished transcription: the text is the concatenation of the segments (joined by a space where
    neither side has whitespace)."""

    text: str
    segments: list[Segment]
    language: str | None
    """The requested language, or None when it was left to the model."""
    duration: float
    usage: Usage


@dataclass(frozen=True)
class ChatResult:
    """A finished audio-chat answer."""

    text: str
    usage: Usage
    finish_reason: str = "stop"


@dataclass(frozen=True)
class AudioPrompt:
    """Prompt ids plus the audios behind its `[AUDIO]` runs, each zero-padded to whole chunks (16 kHz)."""

    ids: list[int]
    audios: list[np.ndarray]
