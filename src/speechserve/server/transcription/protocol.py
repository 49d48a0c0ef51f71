"""Wire models of ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``: OpenAI's form fields in
OpenAI's order, then our extensions, then the SSE events of a streamed transcription.

The audio itself arrives in the multipart ``file`` field (read by ``uploads.py``); these models hold the
other fields. Unknown fields are accepted and reported back in ``X-Ignored-Fields`` (and, in a JSON response,
``ignored_fields``), with the known fields Voxtral cannot use, never silently dropped (see ``headers.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from speechserve.asr import Transcription, TranscriptionOptions

TranscriptionFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
Granularity = Literal["word", "segment"]
UNUSED_FIELDS = ("prompt", "include")
"""Accepted but not used: Voxtral's transcription prompt has no slot for context text, and it reports no
per-token log-probabilities in OpenAI's ``include[]=logprobs`` form."""


class TranscriptionRequest(BaseModel):
    """Form fields of ``POST /v1/audio/transcriptions`` (besides ``file``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: str | None = None
    """Served model name (``GET /v1/models``; ``whisper-1`` etc. are aliases). Default: the first
    speech-to-text model."""
    language: str | None = None
    """ISO-639-1 code of the speech (``lang:xx`` in the prompt); omitted: the model detects it."""
    prompt: str | None = None
    """Context text: accepted, not used by Voxtral (reported in ``X-Ignored-Fields``)."""
    response_format: TranscriptionFormat = "json"
    """json (default), text, srt, verbose_json, vtt. Subtitle cues and segments follow the 30 s chunks."""
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    """0 (default) decodes greedily, as the reference; above 0 samples."""
    timestamp_granularities: list[Granularity] | None = Field(None, alias="timestamp_granularities[]")
    """``segment`` (one per 30 s chunk). ``word`` is refused: Voxtral gives no word timings."""
    include: list[str] | None = Field(None, alias="include[]")
    """``logprobs``: accepted, not used (reported in ``X-Ignored-Fields``)."""
    stream: bool = False
    """``true``: SSE ``transcript.text.delta`` events as text is generated, ``transcript.text.done``, then
    ``[DONE]``."""

    # ---- extensions -----------------------------------------------------------------------------------------
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus mass when sampling (temperature > 0)."""
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    """Seed of the request's own sampler: same seed, same audio → same text. Chunk i uses seed + i."""
    max_tokens: int | None = Field(None, ge=1)
    """Cap on tokens generated per 30 s chunk (default 512)."""

    def to_options(self) -> TranscriptionOptions:
        return TranscriptionOptions(
            language=self.language or None,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            max_tokens=self.max_tokens,
        )

    def ignored_fields(self) -> list[str]:
        """Fields sent that have no effect: unused known ones, then unknown extras."""
        sent = [name for name in UNUSED_FIELDS if getattr(self, name)]
        if self.timestamp_granularities and self.response_format != "verbose_json":
            sent.append("timestamp_granularities")  # OpenAI: only verbose_json carries timestamps
        return sent + sorted(self.model_extra or {})


class TranslationRequest(BaseModel):
    """Form fields of ``POST /v1/audio/translations`` (besides ``file``)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    """Served model name."""
    prompt: str | None = None
    """Context text (English)."""
    response_format: TranscriptionFormat = "json"
    temperature: float = Field(0.0, ge=0.0, le=1.0)


class TranscriptionTextDelta(BaseModel):
    """SSE event: the next piece of text."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    segment_id: int | None = None
    """Index of the 30 s chunk the text belongs to."""


class TokenUsage(BaseModel):
    """OpenAI's token usage of the ``transcript.text.done`` event."""

    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int


class TranscriptionTextDone(BaseModel):
    """SSE event: the complete text (the joined deltas), with usage."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    usage: TokenUsage

    @classmethod
    def of(cls, t: Transcription) -> TranscriptionTextDone:
        u = t.usage
        return cls(text=t.text, usage=TokenUsage(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens, total_tokens=u.total_tokens))  # fmt: skip


class TranscriptionError(BaseModel):
    """SSE event ending a stream that failed after it started; ``error`` is OpenAI's error object."""

    type: Literal["error"] = "error"
    error: dict
