"""Client events of ``WS /v1/audio/speech/stream`` checked, what a ``session.config`` puts in effect, and how
any refusal becomes an ``error`` event with a code.

A config is validated by the same request model and planned by the same :meth:`SpeechService.plan` as a
``POST /v1/audio/speech`` body (with a placeholder input): the model, the voice or the reference clip (encoded
once here, reused by every sentence), the options and the output format are decided once; each sentence only
adds its segments. So a sentence spoken in the stream is generated exactly as the one-shot request for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from speechserve.errors import SpeechServeError
from speechserve.server.errors import error_object
from speechserve.server.speech import stream_protocol as p
from speechserve.server.speech.generation import SpeechPlan
from speechserve.server.speech.protocol import CreateSpeechRequest
from speechserve.server.speech.serving import SpeechService
from speechserve.server.state import ServedModel

PLACEHOLDER_INPUT = "."
"""The input a config is planned with: the plan's every field but its segments is independent of the text."""


class StreamError(SpeechServeError):
    """A client event the session refuses (the session stays open)."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.param = code, param


@dataclass(frozen=True)
class Voice:
    """What one ``session.config`` put in effect; every sentence keeps the one it was cut under."""

    model: ServedModel
    template: SpeechPlan
    """The plan of every sentence but its segments."""
    stream: p.StreamSettings


def parse_event(text: str, max_chars: int) -> dict[str, Any]:
    """A client message as an event: a JSON object with a string ``type``, at most ``max_chars`` long."""
    if len(text) > max_chars:
        raise StreamError(p.EVENT_TOO_LARGE, f"the event is {len(text)} characters; the limit is {max_chars}")
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise StreamError(p.INVALID_JSON, f"the event is not valid JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise StreamError(p.INVALID_EVENT, "an event is a JSON object with a string 'type'", "type")
    return event


def check_fields(event: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """``unknown_field`` for the first field of ``event`` not in ``allowed`` (nor ``type``/``event_id``)."""
    unknown = p.unknown_fields(event, allowed)
    if unknown:
        message = f"{event['type']} has no field {unknown[0]!r} (unknown: {', '.join(unknown)})"
        raise StreamError(p.UNKNOWN_FIELD, message, unknown[0])


async def configure(service: SpeechService, event: dict[str, Any]) -> tuple[Voice, p.SessionUpdated]:
    """Validate and plan a ``session.config``; its ``session.updated`` event. Typed errors (unknown model or
    voice, bad values …) raise as they do on ``/v1/audio/speech``."""
    check_fields(event, p.config_fields())
    if event.get("word_timestamps"):
        raise StreamError(p.UNSUPPORTED, "word_timestamps needs a forced aligner; none is served here", "word_timestamps")  # fmt: skip
    try:
        stream = p.StreamSettings.model_validate({k: event[k] for k in p.STREAM_FIELDS if k in event})
        body = CreateSpeechRequest.model_validate(p.speech_fields(event) | {"input": PLACEHOLDER_INPUT})
    except ValidationError as exc:
        raise _invalid(exc) from None
    model = service.registry.for_task(body.model, "speech")
    voice = Voice(model, await service.plan(body, model), stream)
    return voice, _shown(body, voice, [k for k in event if k in p.COMPAT_FIELDS])


def _shown(body: CreateSpeechRequest, voice: Voice, compat: list[str]) -> p.SessionUpdated:
    """``session.updated`` of a config: what is in effect, and the fields that change nothing (as the
    ``X-Ignored-Fields`` of ``/v1/audio/speech``, then vLLM-Omni's fields for other models)."""
    model, plan, stream = voice.model, voice.template, voice.stream
    ignored = SpeechService.ignored_fields(body, model, plan)
    return p.SessionUpdated(
        model=model.id, voice=plan.voice, format=plan.response_format, sample_rate=plan.sample_rate,
        stream_audio=stream.stream_audio, split_granularity=stream.split_granularity,
        ignored_fields=ignored + compat,
    )  # fmt: skip


def _invalid(exc: ValidationError) -> StreamError:
    """The first pydantic error of a ``session.config`` → ``invalid_value`` naming the field."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid value", "loc": ()}
    where = ".".join(str(part) for part in first.get("loc", ()) if not str(part)[:1].isupper())
    return StreamError(p.INVALID_VALUE, f"session.config.{where}: {first['msg']}", where or None)


def error_event(exc: BaseException, **where: Any) -> p.ErrorEvent:
    """The ``error`` event for ``exc``: a :class:`StreamError`'s code, or the code the HTTP routes give a typed
    error (``model_not_found``, ``voice_not_found``, ``overloaded`` …); anything unexpected is
    ``generation_failed`` without internals."""
    if isinstance(exc, StreamError):
        return p.ErrorEvent(message=str(exc), code=exc.code, param=exc.param, **where)
    fields = error_object(exc)
    code = fields["code"] if fields["code"] not in (None, "internal_error") else p.GENERATION_FAILED
    return p.ErrorEvent(message=fields["message"], code=code, param=fields["param"], **where)
