"""Wire models of ``WS /v1/audio/speech/stream``: vLLM-Omni's client and server events, then our extensions.

Client events (JSON text messages): ``session.config`` (every ``/v1/audio/speech`` field but ``input``,
``stream`` and ``stream_format``, plus ``stream_audio`` and ``split_granularity``), ``input.text {text}``,
``input.done`` (flush: the connection stays open), ``session.close``; extension: ``input.cancel``.

Server events: ``audio.start`` … binary audio frames … ``audio.done`` per sentence, ``session.done`` per
utterance (one ``input.done``), ``error`` with ``message`` (vLLM-Omni's field) and a ``code``; extensions:
``session.updated`` (what a config put in effect), ``input.cancelled``, usage on ``audio.done`` and
``session.done``.

Unknown fields are an error here (a misspelt ``voice`` would otherwise speak in the wrong voice), except the
vLLM-Omni fields no served model uses, which are accepted and listed in ``session.updated.ignored_fields``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from speechserve.server.speech.protocol import CreateSpeechRequest
from speechserve.tts.segmentation import Granularity

STREAM_PATH = "/v1/audio/speech/stream"

# ---- error codes of ``error`` events (the session stays open after each) -------------------------------------
INVALID_JSON = "invalid_json"
INVALID_EVENT = "invalid_event"
"""Not a JSON object with a string ``type``, or a field of the wrong type."""
UNKNOWN_EVENT = "unknown_event"
UNKNOWN_FIELD = "unknown_field"
EVENT_TOO_LARGE = "event_too_large"
FRAGMENT_TOO_LARGE = "fragment_too_large"
BUFFER_FULL = "buffer_full"
"""More text waiting to be spoken than a session holds (``16 × max_input_chars``); the fragment was dropped."""
BINARY_NOT_EXPECTED = "binary_not_expected"
"""Audio goes from the server to the client only; every client message is JSON text."""
NOT_CONFIGURED = "session_not_configured"
"""Text before the first ``session.config``."""
UTTERANCE_IN_PROGRESS = "utterance_in_progress"
"""``session.config`` while text of an utterance is still buffered; send ``input.done`` first."""
INVALID_VALUE = "invalid_value"
UNSUPPORTED = "unsupported"
GENERATION_FAILED = "generation_failed"
IDLE_TIMEOUT = "idle_timeout"
"""No client event for ``speech_stream_idle_timeout_s`` while nothing was being spoken: sent just before the
server closes the session (the one error code after which it does not stay open)."""

# ---- client: session.config --------------------------------------------------------------------------------------
STREAM_FIELDS = ("stream_audio", "split_granularity")
"""Fields of the stream itself (the rest are ``/v1/audio/speech``'s)."""
NOT_CONFIG_FIELDS = frozenset({"input", "stream", "stream_format"})
"""Speech fields that make no sense here: text comes in ``input.text``, delivery is the socket's."""
ALIASES = {"speaker": "voice", "max_new_tokens": "max_tokens"}
"""vLLM-Omni's names of our fields."""
COMPAT_FIELDS = frozenset({
    "task_type", "initial_codec_chunk_frames", "non_streaming_mode", "x_vector_only_mode", "speaker_embedding",
    "word_timestamps",
})  # fmt: skip
"""vLLM-Omni fields for other models: accepted and reported in ``session.updated.ignored_fields``
(``word_timestamps: true`` is refused: no forced aligner here)."""
ENVELOPE_FIELDS = frozenset({"type", "event_id"})


class StreamSettings(BaseModel):
    """The stream's own part of a ``session.config``."""

    stream_audio: bool = False
    """True: raw audio frames as generated; false (vLLM-Omni's default): one frame with each sentence's file."""
    split_granularity: Granularity = "none"
    """``none`` (vLLM-Omni's default): one request per ``input.done``; ``sentence``: each sentence as soon as it
    ends; ``clause``: each clause too."""


def speech_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The ``/v1/audio/speech`` part of a ``session.config`` (aliases resolved); ``response_format`` defaults
    to ``wav`` as in vLLM-Omni."""
    known = set(CreateSpeechRequest.model_fields) - NOT_CONFIG_FIELDS
    out = {ALIASES.get(k, k): v for k, v in config.items() if ALIASES.get(k, k) in known}
    return {"response_format": "wav"} | out


def unknown_fields(event: dict[str, Any], allowed: frozenset[str] | set[str]) -> list[str]:
    return sorted(k for k in event if k not in allowed and k not in ENVELOPE_FIELDS)


def config_fields() -> set[str]:
    """Every field a ``session.config`` may carry."""
    speech = set(CreateSpeechRequest.model_fields) - NOT_CONFIG_FIELDS
    return speech | set(STREAM_FIELDS) | set(ALIASES) | COMPAT_FIELDS


# ---- server events -------------------------------------------------------------------------------------------------
class Usage(BaseModel):
    """Prompt tokens in, audio frames out (as ``/v1/audio/speech``'s usage)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        i, o = self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        return Usage(input_tokens=i, output_tokens=o, total_tokens=i + o)


class SessionUpdated(BaseModel):
    """Extension: a ``session.config`` took effect for the next utterance."""

    type: Literal["session.updated"] = "session.updated"
    model: str
    voice: str | None
    format: str
    sample_rate: int
    stream_audio: bool
    split_granularity: Granularity
    ignored_fields: list[str]
    """Fields sent that change nothing for this model (as ``X-Ignored-Fields`` of ``/v1/audio/speech``)."""


class AudioStart(BaseModel):
    """The binary frames that follow, up to ``audio.done``, are this sentence's audio."""

    type: Literal["audio.start"] = "audio.start"
    utterance_index: int
    sentence_index: int
    sentence_text: str
    format: str
    sample_rate: int
    channels: int = 1


class AudioDone(BaseModel):
    type: Literal["audio.done"] = "audio.done"
    utterance_index: int
    sentence_index: int
    total_bytes: int
    error: bool = False
    cancelled: bool = False
    """Extension: stopped by ``input.cancel``."""
    usage: Usage
    """Extension: this sentence's tokens."""


class SessionDone(BaseModel):
    """The end of one utterance (one ``input.done``); the connection stays open."""

    type: Literal["session.done"] = "session.done"
    utterance_index: int
    total_sentences: int
    cancelled: bool = False
    """Extension: stopped by ``input.cancel``."""
    usage: Usage
    """Extension: the utterance's tokens."""


class InputCancelled(BaseModel):
    """Extension: every sentence queued or speaking was stopped and the unspoken text dropped; no audio from
    before this event follows it. The next text starts utterance ``utterance_index``."""

    type: Literal["input.cancelled"] = "input.cancelled"
    utterance_index: int
    dropped_text: str
    """Text that had been sent but not yet spoken (or not yet cut into a sentence)."""


class ErrorEvent(BaseModel):
    """vLLM-Omni's ``error`` (``message``) with OpenAI's ``code`` and ``param``; the session stays open."""

    type: Literal["error"] = "error"
    message: str
    code: str | None = None
    param: str | None = None
    event_type: str | None = None
    """The ``type`` of the client event refused, when known."""
    event_id: str | None = None
    utterance_index: int | None = None
    sentence_index: int | None = None
