"""What a realtime session's next utterance uses — model, input rate, delay, language — and how the three
forms of ``session.update`` change it.

An update is checked whole against the model it will use (the delay by the model's own pipeline, the
language by its tokenizer) and applied only if every part is valid, so a refused update changes nothing.
Model, rate and delay cannot change while an utterance is open (its engine stream and resampler are
already built); language can (Voxtral Realtime does not use it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from speechserve.errors import InvalidRequest, ModelNotFound, UnsupportedTask
from speechserve.server.realtime.errors import (
    INVALID_STATE,
    UNSUPPORTED,
    UNSUPPORTED_AUDIO_FORMAT,
    RealtimeError,
    invalid_fields,
)
from speechserve.server.realtime.protocol import (
    OPENAI_RATE,
    RATES,
    VLLM_RATE,
    AudioFormat,
    AudioInputShown,
    AudioShown,
    BetaSessionConfig,
    InputTranscription,
    PCMFormat,
    SessionConfig,
    TranscriptionSession,
    TranscriptionShown,
    VllmSessionUpdate,
)
from speechserve.server.settings import ServerSettings
from speechserve.server.state import ModelRegistry, ServedModel

FORMAT_PARAM = "session.audio.input.format"
DELAY_PARAM = "session.audio.input.transcription.delay"


@dataclass(frozen=True)
class Change:
    """The parts of one ``session.update`` (None: unchanged)."""

    model: str | None = None
    rate: int | None = None
    delay: str | int | None = None
    language: str | None = None


@dataclass(frozen=True)
class SessionSettings:
    """In effect for the session's next utterance."""

    model: ServedModel | None = None
    model_name: str | None = None
    """As the client named it (None: the server's first realtime model)."""
    rate: int | None = None
    """PCM16 rate of appended audio (None: the dialect's default, 24 kHz for OpenAI, 16 kHz for vLLM)."""
    delay: str | int | None = None
    """As the client gave it (None: the model's default)."""
    delay_ms: int | None = None
    language: str | None = None

    def show(self, session_id: str, default_rate: int) -> TranscriptionSession:
        shown = TranscriptionShown(
            model=self.model_name or (self.model.id if self.model else None),
            language=self.language, delay=self.delay, delay_ms=self.delay_ms,
        )  # fmt: skip
        audio = AudioInputShown(format=PCMFormat(rate=self.rate or default_rate), transcription=shown)
        return TranscriptionSession(id=session_id, audio=AudioShown(input=audio))


def parse(model: type[BaseModel], data: Any, prefix: str) -> Any:
    """``data`` as ``model``; an ``invalid_value`` RealtimeError naming the field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_fields(exc, prefix) from None


def _delay(t: InputTranscription | VllmSessionUpdate | None) -> str | int | None:
    if t is None:
        return None
    return t.delay_ms if t.delay_ms is not None else t.delay


def _rate(fmt: AudioFormat | None) -> int | None:
    if fmt is None:
        return None
    if fmt.type not in (None, "audio/pcm"):
        raise RealtimeError(
            UNSUPPORTED_AUDIO_FORMAT,
            f"audio format {fmt.type!r} is not supported; send PCM16: {{'type': 'audio/pcm', 'rate': 24000}} "
            "(or 16000)",
            f"{FORMAT_PARAM}.type",
        )
    rate = OPENAI_RATE if fmt.rate is None else fmt.rate
    if rate not in RATES:
        raise RealtimeError(
            UNSUPPORTED_AUDIO_FORMAT,
            f"unsupported PCM rate {rate}: use {OPENAI_RATE} (OpenAI's) or {VLLM_RATE}",
            f"{FORMAT_PARAM}.rate",
        )
    return rate


def openai_change(session: Any) -> Change:
    """The GA ``session.update``'s ``session`` object."""
    cfg: SessionConfig = parse(SessionConfig, session, "session")
    if cfg.type not in (None, "transcription"):
        raise RealtimeError(
            UNSUPPORTED,
            f"session.type {cfg.type!r} is not served: this server transcribes ('transcription' sessions); "
            "it has no conversation model that answers",
            "session.type",
        )
    inp = cfg.audio.input if cfg.audio is not None else None
    t = inp.transcription if inp is not None else None
    model = t.model if t is not None and t.model else cfg.model
    rate = _rate(inp.format if inp is not None else None)
    return Change(model, rate, _delay(t), t.language if t is not None else None)


BETA_FORMATS = {"pcm16": OPENAI_RATE, "pcm16_16k": VLLM_RATE}


def beta_change(session: Any) -> Change:
    """The beta ``transcription_session.update``'s ``session`` object."""
    cfg: BetaSessionConfig = parse(BetaSessionConfig, session, "session")
    rate = None
    if cfg.input_audio_format is not None:
        rate = BETA_FORMATS.get(cfg.input_audio_format)
        if rate is None:
            raise RealtimeError(
                UNSUPPORTED_AUDIO_FORMAT,
                f"input_audio_format {cfg.input_audio_format!r} is not supported; use 'pcm16' (24 kHz)",
                "session.input_audio_format",
            )
    t = cfg.input_audio_transcription
    return Change(t.model if t else None, rate, _delay(t), t.language if t else None)


def vllm_change(event: Any) -> Change:
    """vLLM's ``session.update {model}`` (extensions ``delay``, ``delay_ms``, ``language``)."""
    body: VllmSessionUpdate = parse(VllmSessionUpdate, event, "session.update")
    return Change(body.model, None, _delay(body), body.language)


def resolve_model(registry: ModelRegistry, settings: ServerSettings, name: str | None) -> ServedModel:
    """The served model ``name`` (None: the first realtime model), checked for the realtime task; OpenAI's
    names (``realtime_model_aliases``) fall back to the first realtime model."""
    try:
        return registry.for_task(name, "realtime")
    except (ModelNotFound, UnsupportedTask):
        if name is None or name not in settings.realtime_model_aliases:
            raise
        return registry.for_task(None, "realtime")


def apply(
    current: SessionSettings,
    change: Change,
    registry: ModelRegistry,
    settings: ServerSettings,
    streaming: bool,
) -> SessionSettings:
    """``current`` with ``change`` applied, every part checked first (RealtimeError / SDK errors)."""
    model = resolve_model(registry, settings, change.model) if change.model else current.model
    model = model or resolve_model(
        registry, settings, current.model_name
    )  # a name refused before fails again
    delay = current.delay if change.delay is None else change.delay
    try:
        delay_ms = model.pipeline.realtime_request(delay).delay_ms
    except InvalidRequest as exc:
        raise RealtimeError("invalid_value", str(exc), DELAY_PARAM) from None
    language = current.language if change.language is None else (change.language or None)
    model.pipeline.tokenizer.check_language(language)
    rate = current.rate if change.rate is None else change.rate
    moved = model is not current.model or rate != current.rate or delay_ms != current.delay_ms
    if streaming and moved and current.model is not None:
        raise RealtimeError(
            INVALID_STATE,
            "model, audio format and delay cannot change while audio is being transcribed; commit (or clear) "
            "the input audio buffer first",
            "session",
        )
    name = change.model or current.model_name
    return replace(current, model=model, model_name=name, rate=rate, delay=delay, delay_ms=delay_ms, language=language)  # fmt: skip
