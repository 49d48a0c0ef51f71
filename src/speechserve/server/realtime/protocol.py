"""Wire models of ``WS /v1/realtime``: what clients configure, and every event the server sends, in both
dialects.

- OpenAI's GA transcription sessions: ``session.update {session: {type: "transcription", audio: {input:
  {format, transcription}}}}`` (and the beta ``transcription_session.update``, which LiveKit's plugin
  sends); server events ``session.created`` / ``session.updated``, ``input_audio_buffer.committed`` /
  ``.cleared``, ``conversation.item.input_audio_transcription.delta`` / ``.completed`` / ``.failed`` and
  ``error`` with OpenAI's error object.
- vLLM's Voxtral events: ``session.update {model}``, ``transcription.delta {delta}``, ``transcription.done
  {text, usage}`` and a flat ``error {error, code}``.

Client fields this server cannot use (``turn_detection``, ``noise_reduction``, ``prompt`` …) are accepted and
ignored; ``session.updated`` shows what is in effect. Unknown fields are ignored, so newer clients work.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

OPENAI_RATE = 24_000
"""OpenAI's PCM16 rate (the only one OpenAI accepts); resampled to the model's rate inside."""
VLLM_RATE = 16_000
"""vLLM's realtime PCM16 rate (no resampling there)."""
RATES = (OPENAI_RATE, VLLM_RATE)
"""Accepted ``audio.input.format.rate`` values (16 kHz is an extension of OpenAI's protocol)."""


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


# ---- client: session configuration ------------------------------------------------------------------------------
class AudioFormat(BaseModel):
    """``audio.input.format``: ``{"type": "audio/pcm", "rate": 24000}`` (or 16000)."""

    type: str | None = None
    rate: int | None = None


class InputTranscription(BaseModel):
    """``audio.input.transcription`` (GA) / ``input_audio_transcription`` (beta)."""

    model: str | None = None
    """A served model (or an OpenAI name, see ``realtime_model_aliases``)."""
    language: str | None = None
    """Checked (ISO-639-1) and reported; Voxtral Realtime's prompt has no language slot."""
    delay: str | int | None = None
    """How far the text runs behind the audio: ``minimal``, ``low``, ``medium``, ``high``, ``xhigh`` (the
    model maps them to milliseconds), or milliseconds."""
    delay_ms: int | None = None
    """Extension: the delay in milliseconds (wins over ``delay``)."""


class AudioInput(BaseModel):
    format: AudioFormat | None = None
    transcription: InputTranscription | None = None


class SessionAudio(BaseModel):
    input: AudioInput | None = None


class SessionConfig(BaseModel):
    """``session`` of a GA ``session.update``; a partial update (absent fields keep their values)."""

    type: str | None = None
    """``transcription`` (the only kind served; ``realtime`` conversations are refused)."""
    model: str | None = None
    audio: SessionAudio | None = None


class BetaSessionConfig(BaseModel):
    """``session`` of the beta ``transcription_session.update``."""

    input_audio_format: str | None = None
    """``pcm16`` (24 kHz); extension: ``pcm16_16k``."""
    input_audio_transcription: InputTranscription | None = None


class VllmSessionUpdate(BaseModel):
    """vLLM's ``session.update``: the model at the top level (extensions: ``delay``, ``delay_ms``)."""

    model: str | None = None
    language: str | None = None
    delay: str | int | None = None
    delay_ms: int | None = None


# ---- server: the session as shown ------------------------------------------------------------------------------
class PCMFormat(BaseModel):
    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int


class TranscriptionShown(BaseModel):
    model: str | None
    language: str | None = None
    delay: str | int | None = None
    """As the client gave it (None: the model's default)."""
    delay_ms: int | None = None
    """The delay in effect, in milliseconds."""


class AudioInputShown(BaseModel):
    format: PCMFormat
    transcription: TranscriptionShown
    turn_detection: None = None
    """No voice activity detection: the client commits (and the model transcribes while audio arrives)."""
    noise_reduction: None = None


class AudioShown(BaseModel):
    input: AudioInputShown


class TranscriptionSession(BaseModel):
    """The session object of ``session.created`` / ``session.updated`` (OpenAI GA shape)."""

    type: Literal["transcription"] = "transcription"
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    id: str
    audio: AudioShown
    include: list[str] | None = None

    def beta(self) -> dict[str, Any]:
        """The same settings in the beta ``transcription_session`` shape."""
        fmt = self.audio.input.format
        return {
            "object": self.object,
            "id": self.id,
            "input_audio_format": "pcm16" if fmt.rate == OPENAI_RATE else "pcm16_16k",
            "input_audio_transcription": self.audio.input.transcription.model_dump(),
            "turn_detection": None,
            "input_audio_noise_reduction": None,
            "include": self.include,
        }


# ---- server events: OpenAI ---------------------------------------------------------------------------------------
class ServerEvent(BaseModel):
    type: str
    event_id: str = Field(default_factory=lambda: new_id("event"))


class SessionCreated(ServerEvent):
    """The first event of every connection; carries vLLM's ``id`` and ``created`` too, so both dialects
    read it."""

    type: Literal["session.created"] = "session.created"
    session: TranscriptionSession
    id: str
    created: int = Field(default_factory=lambda: int(time.time()))


class SessionUpdated(ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    session: TranscriptionSession


class BetaSessionUpdated(ServerEvent):
    type: Literal["transcription_session.updated"] = "transcription_session.updated"
    session: dict[str, Any]


class BufferCommitted(ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None


class BufferCleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TranscriptionDelta(ServerEvent):
    """Text of an item as it is generated, while its audio still arrives."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class TokenUsage(BaseModel):
    type: Literal["tokens"] = "tokens"
    input_tokens: int
    output_tokens: int
    total_tokens: int


class TranscriptionCompleted(ServerEvent):
    """An item's whole transcript (its deltas joined) once its audio ended and was heard to the end."""

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: TokenUsage


class ErrorDetail(BaseModel):
    """OpenAI's realtime error object."""

    type: str
    """``invalid_request_error`` or ``server_error`` (``rate_limit_error`` when the engine is full)."""
    code: str | None
    message: str
    param: str | None = None
    event_id: str | None = None
    """The client event that caused it, when the client gave it an ``event_id``."""


class TranscriptionFailed(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str
    content_index: int = 0
    error: ErrorDetail


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorDetail


# ---- server events: vLLM -----------------------------------------------------------------------------------------
class VllmDelta(BaseModel):
    type: Literal["transcription.delta"] = "transcription.delta"
    delta: str


class VllmUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class VllmDone(BaseModel):
    type: Literal["transcription.done"] = "transcription.done"
    text: str
    usage: VllmUsage


class VllmError(BaseModel):
    type: Literal["error"] = "error"
    error: str
    code: str | None = None
