"""Wire models of ``POST /v1/chat/completions`` with audio: OpenAI's fields in OpenAI's order, then the
response objects (whole and streamed chunks) with mistral.rs-style timing fields in ``usage``.

Audio comes as content parts: OpenAI's ``input_audio`` (``{data: <base64>, format}``) or ``audio_url``
(``{url}``: a ``data:`` URL, an ``http(s)`` URL the server fetches under its network policy, or a
``file://`` URL under the allowed local media directory). Unknown top-level fields are accepted and reported
in ``X-Ignored-Fields`` (and in a whole completion's ``ignored_fields``; see ``headers.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from speechserve.asr import ChatOptions

UNUSED_FIELDS = ("stop", "frequency_penalty", "presence_penalty", "logprobs", "tools", "response_format")
"""Known OpenAI fields Voxtral chat does not apply (reported in ``X-Ignored-Fields`` when sent)."""


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class InputAudio(BaseModel):
    data: str = Field(min_length=1)
    """Base64 of an encoded audio file (a ``data:`` URL is accepted too)."""
    format: str = "wav"
    """Container/codec of ``data``: wav, mp3, flac, ogg, opus, m4a, aac, webm …"""


class InputAudioPart(BaseModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class AudioURL(BaseModel):
    url: str = Field(min_length=1)


class AudioURLPart(BaseModel):
    type: Literal["audio_url"]
    audio_url: AudioURL

    @field_validator("audio_url", mode="before")
    @classmethod
    def _bare_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value  # some clients send the URL itself


ContentPart = Annotated[TextPart | InputAudioPart | AudioURLPart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False
    """Send a last chunk with ``usage`` (and no choices) before ``[DONE]``."""


class ChatCompletionRequest(BaseModel):
    """Body of ``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    """Served model name. Default: the first model that can chat."""
    messages: list[ChatMessage] = Field(min_length=1)
    """system / user / assistant turns; user content may mix text and audio parts."""
    max_completion_tokens: int | None = Field(None, ge=1)
    """Cap on generated tokens (default 4096, and never past the context)."""
    max_tokens: int | None = Field(None, ge=1)
    """Older name of ``max_completion_tokens``."""
    n: int = Field(1, ge=1, le=1)
    """Only one choice is generated."""
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    """Seed of the request's own sampler."""
    stream: bool = False
    """``true``: ``chat.completion.chunk`` events, then ``[DONE]``."""
    stream_options: StreamOptions | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    """0 (default) decodes greedily; Mistral suggests 0.2 with top_p 0.95 for audio chat."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)

    def to_options(self) -> ChatOptions:
        return ChatOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            max_tokens=self.max_completion_tokens or self.max_tokens,
        )

    def ignored_fields(self) -> list[str]:
        extra = self.model_extra or {}
        return [f for f in UNUSED_FIELDS if extra.get(f) is not None] + sorted(
            f for f in extra if f not in UNUSED_FIELDS
        )


# ---- responses ------------------------------------------------------------------------------------------------


class ChatUsage(BaseModel):
    """OpenAI's token counts plus mistral.rs's timings (seconds; rates in tokens per second).

    Prompt time runs from submission to the first token (queueing, audio encoding, prefill); completion
    time from the first token to the last."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    avg_tok_per_sec: float
    avg_prompt_tok_per_sec: float
    avg_compl_tok_per_sec: float
    total_time_sec: float
    total_prompt_time_sec: float
    total_completion_time_sec: float


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage
    ignored_fields: list[str] | None = None
    """Extension, present only when some were sent: request fields accepted but not used (also in the
    ``X-Ignored-Fields`` header, percent-encoded there)."""


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: ChatUsage | None = None


class ChatStreamError(BaseModel):
    """Last event of a stream that failed after it started; ``error`` is OpenAI's error object."""

    error: dict
