"""Errors of a realtime session, and how any error becomes an ``error`` event's fields.

A session answers a bad client event with an ``error`` event and keeps going. Its own refusals raise
:class:`RealtimeError` with a code; the SDK's typed errors (a bad delay, an unknown model, a full engine …)
keep the code the HTTP routes give them (``server/errors.py``); anything unexpected is a ``server_error``
that does not leak internals.
"""

from __future__ import annotations

from pydantic import ValidationError

from speechserve.errors import SpeechServeError
from speechserve.server.errors import error_object
from speechserve.server.realtime.protocol import ErrorDetail

INVALID_JSON = "invalid_json"
INVALID_EVENT = "invalid_event"
UNKNOWN_EVENT = "unknown_event"
UNSUPPORTED_EVENT = "unsupported_event"
EVENT_TOO_LARGE = "event_too_large"
INVALID_AUDIO = "invalid_audio"
BUFFER_FULL = "buffer_full"
UNSUPPORTED_AUDIO_FORMAT = "unsupported_audio_format"
COMMIT_EMPTY = "input_audio_buffer_commit_empty"
INVALID_STATE = "invalid_state"
MISSING_PARAMETER = "missing_required_parameter"
INVALID_VALUE = "invalid_value"
UNSUPPORTED = "unsupported"
PROCESSING_ERROR = "processing_error"


class RealtimeError(SpeechServeError):
    """A client event the session refuses (the session stays open)."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.param = code, param


def invalid_fields(exc: ValidationError, prefix: str) -> RealtimeError:
    """A pydantic error of a client event's object → ``invalid_value`` naming the field (``prefix.a.b``)."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid value", "loc": ()}
    where = ".".join([prefix, *(str(p) for p in first.get("loc", ()) if not str(p)[:1].isupper())])
    return RealtimeError(INVALID_VALUE, f"{where}: {first['msg']}", where)


def error_detail(exc: BaseException, event_id: str | None = None) -> ErrorDetail:
    """OpenAI's realtime error object for ``exc`` (caused by the client event ``event_id``, if known)."""
    if isinstance(exc, RealtimeError):
        return ErrorDetail(type="invalid_request_error", code=exc.code, message=str(exc), param=exc.param, event_id=event_id)  # fmt: skip
    fields = error_object(exc)
    code = fields["code"] if fields["code"] != "internal_error" else PROCESSING_ERROR
    return ErrorDetail(type=fields["type"], code=code, message=fields["message"], param=fields["param"], event_id=event_id)  # fmt: skip
