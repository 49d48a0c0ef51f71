"""Wire models of ``POST /v1/audio/speech``: OpenAI's fields in OpenAI's order, then our extensions.

Unknown fields are accepted (clients written for other servers send their own) and reported back in the
``X-Ignored-Fields`` header together with the known fields this model cannot use, never silently dropped
(names that are not HTTP tokens percent-encoded there, see ``headers.py``).

What the sampling and length extensions mean is the model's: the served pipeline applies the ones it lists in
``speech_fields`` (see ``capability.py``); the others are reported as ignored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from speechserve.audio import MAX_SPEED, MIN_SPEED
from speechserve.errors import InvalidRequest
from speechserve.options import SynthesisOptions

ResponseFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm", "pcm_f32le"]
StreamFormat = Literal["audio", "sse"]
Delivery = Literal["file", "audio", "sse"]

MAX_REF_AUDIO_CHARS = 32 * 1024 * 1024
"""Largest accepted ``ref_audio`` string (base64 of ~24 MB)."""
UNUSED_FIELDS = ("instructions", "language")
"""Accepted for compatibility but used by no served model (their prompts are text + voice or reference)."""
OPTION_FIELDS = ("temperature", "top_p", "top_k", "max_tokens", "cfg_alpha", "cfg_scale", "ref_text")
"""Extensions whose meaning is the model's: applied by ``pipeline.speech_options`` when the pipeline lists
them in ``speech_fields``, reported in ``X-Ignored-Fields`` otherwise."""


def is_blank(text: str) -> bool:
    """True when ``text`` has nothing to speak: only whitespace and invisible format characters (zero-width
    space, joiners, word joiner, byte-order mark … Unicode category Cf)."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


class VoiceObject(BaseModel):
    """OpenAI's custom-voice form ``{"id": "..."}``; here the id names a preset or an alias."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)


class CreateSpeechRequest(BaseModel):
    """Body of ``POST /v1/audio/speech``."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    """Served model name (see ``GET /v1/models``; OpenAI's ``tts-1`` etc. are aliases). Default: the served one."""
    input: str
    """Text to speak, at most ``max_input_chars`` (4096) characters; long text is split into segments."""
    voice: str | VoiceObject | None = None
    """Preset (``GET /v1/audio/voices``), an alias such as ``alloy``, or ``{"id": ...}``. Default: the model's.
    A model without presets (Dia: speakers come from the text's tags) accepts it and reports it ignored."""
    instructions: str | None = None
    """Style instructions: accepted, not used (reported in ``X-Ignored-Fields``)."""
    response_format: ResponseFormat = "mp3"
    """mp3 (default), opus (Ogg), aac (ADTS), flac, wav, pcm (s16le mono), pcm_f32le (float32 LE mono)."""
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED)
    """Tempo, 0.25–4.0, applied by pitch-preserving time stretch."""
    stream_format: StreamFormat | None = None
    """``audio``: raw audio bytes sent as generated; ``sse``: ``speech.audio.delta``/``done`` events."""

    # ---- extensions -----------------------------------------------------------------------------------------
    stream: bool | None = None
    """Without ``stream_format``: ``true`` → SSE (as vLLM-Omni/Mistral), ``false`` → one complete file.
    Omitted: audio bytes streamed as generated (OpenAI's default ``stream_format=audio``)."""
    sample_rate: int | None = Field(None, ge=8000, le=48000)
    """Output sample rate in Hz (resampled from the model's: 24 kHz Voxtral, 44.1 kHz Dia). Default: the model's."""
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    """Seed of the model's randomness: same seed, text and voice → identical audio on the same device."""
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    """Voxtral: scale of the flow-matching noise, its only randomness (1 = reference, 0 = deterministic).
    Dia: sampling temperature of the audio tokens (default 1.2, 0 = greedy)."""
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    """Dia: nucleus mass kept (default 0.95). Voxtral has no token sampling (reported as ignored)."""
    top_k: int | None = Field(None, ge=1)
    """Dia: size of the classifier-free-guidance filter (default 45). Ignored by Voxtral."""
    max_tokens: int | None = Field(None, ge=1)
    """Voxtral: most 80 ms frames (output tokens) in the whole response. Dia: decoder steps of each segment
    (nari-labs' ``max_tokens``: the start row and any reference audio count; EOS is forced 15 steps before)."""
    cfg_alpha: float | None = Field(None, ge=0.0, le=10.0)
    """Voxtral: classifier-free guidance weight (default 1.2). Ignored by Dia (see ``cfg_scale``)."""
    cfg_scale: float | None = Field(None, ge=0.0, le=20.0)
    """Dia: classifier-free guidance scale (default 3.0). Ignored by Voxtral (see ``cfg_alpha``)."""
    ref_audio: str | None = Field(None, min_length=1, max_length=MAX_REF_AUDIO_CHARS)
    """Reference recording to clone, base64 or a ``data:`` URL; needs codec-encoder weights."""
    ref_text: str | None = Field(None, max_length=4096)
    """Transcript of ``ref_audio`` (Dia needs it, with its ``[S1]``/``[S2]`` tags). Ignored without
    ``ref_audio`` and by Voxtral."""
    language: str | None = None
    """Language hint: accepted, not used (the text and voice decide); reported in ``X-Ignored-Fields``."""

    @field_validator("voice", mode="before")
    @classmethod
    def _voice_shape(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
            return VoiceObject(id=value["id"])
        raise ValueError('voice must be a voice name or an object {"id": "<voice name>"}')

    def to_options(self, max_frames: int, first_chunk_frames: int, max_chunk_frames: int) -> SynthesisOptions:
        """Per-segment options in the server's own terms (``temperature`` → noise scale, ``cfg_alpha``,
        ``max_tokens`` lowering ``max_frames``, the server's per-segment cap); the served pipeline's
        ``speech_options`` turns them and :meth:`option_fields` into the model's options."""
        options = SynthesisOptions(
            seed=self.seed,
            max_frames=min(self.max_tokens or max_frames, max_frames),
            first_chunk_frames=first_chunk_frames,
            max_chunk_frames=max_chunk_frames,
        )
        if self.temperature is not None:
            options = replace(options, noise_scale=self.temperature)
        if self.cfg_alpha is not None:
            options = replace(options, cfg_alpha=self.cfg_alpha)
        return options

    def voice_name(self) -> str | None:
        return self.voice.id if isinstance(self.voice, VoiceObject) else self.voice

    def delivery(self) -> Delivery:
        """How the audio is delivered: a complete ``file``, raw ``audio`` as generated, or ``sse`` events."""
        if self.stream_format == "sse":
            if self.stream is False:
                raise InvalidRequest("stream_format='sse' is a streamed format; drop stream=false", "stream")
            return "sse"
        if self.stream_format == "audio":
            return "file" if self.stream is False else "audio"
        return {None: "audio", True: "sse", False: "file"}[self.stream]

    def option_fields(self) -> dict[str, Any]:
        """The model-specific extensions this request sent (see :data:`OPTION_FIELDS`), in that order."""
        return {name: getattr(self, name) for name in OPTION_FIELDS if getattr(self, name) is not None}

    def ignored_fields(self, applied: Collection[str] = ()) -> list[str]:
        """Fields sent that have no effect: unused known ones, model extensions not in ``applied``, then
        unknown extras."""
        sent = [name for name in UNUSED_FIELDS if getattr(self, name) is not None]
        sent += [name for name in self.option_fields() if name not in applied]
        return sent + sorted(self.model_extra or {})


class SpeechUsage(BaseModel):
    """Token accounting: prompt tokens in, 80 ms audio frames out."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class SpeechAudioDelta(BaseModel):
    """SSE event carrying the next piece of the encoded audio, base64."""

    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str


class SpeechAudioDone(BaseModel):
    """Final SSE event of a successful stream."""

    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage


class SpeechAudioError(BaseModel):
    """Final SSE event of a stream that failed after it started; ``error`` is OpenAI's error object."""

    type: Literal["speech.audio.error"] = "speech.audio.error"
    error: dict
