"""One ``/v1/realtime`` connection's state machine: its dialect, settings, the open utterance and those still
finishing. Transport-free: it takes client messages (text) and hands server events to ``send``.

Two dialects on one path, told apart by the events:

- **OpenAI** (GA transcription sessions; the URL has ``intent`` or ``model``, or the client sends ``session.update
  {session: …}`` / ``transcription_session.update``): the first ``input_audio_buffer.append`` opens an item
  and starts its engine stream at once, so ``conversation.item.input_audio_transcription.delta`` events flow
  while audio still arrives; ``commit`` answers ``input_audio_buffer.committed`` and ends the item's audio;
  ``.completed`` follows once the model has heard all of it. ``clear`` drops the open item.
- **vLLM** (``session.update {model}``, ``commit {final}``; the default for a bare URL): appends are held
  until ``commit`` starts the stream; ``commit {final: true}`` ends it; ``transcription.delta`` …
  ``transcription.done``.

If the model ends an utterance on its own (end of sequence) before the client committed, the item completes
then (OpenAI: with a server-side ``committed`` first) and the next append opens a new one. Bad events are
answered with an ``error`` event and the session goes on; memory is bounded by the buffered-audio cap
(``realtime_max_buffer_seconds``) and the event-size cap (``realtime_max_event_mb``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel

from speechserve.errors import SpeechServeError
from speechserve.server.metrics import ServerMetrics
from speechserve.server.realtime import config
from speechserve.server.realtime.config import Change, SessionSettings
from speechserve.server.realtime.errors import (
    BUFFER_FULL,
    COMMIT_EMPTY,
    EVENT_TOO_LARGE,
    INVALID_EVENT,
    INVALID_JSON,
    MISSING_PARAMETER,
    UNKNOWN_EVENT,
    UNSUPPORTED_EVENT,
    RealtimeError,
    error_detail,
)
from speechserve.server.realtime.item import Item, decode_pcm16
from speechserve.server.realtime.protocol import (
    OPENAI_RATE,
    VLLM_RATE,
    BetaSessionUpdated,
    BufferCleared,
    BufferCommitted,
    ErrorEvent,
    SessionCreated,
    SessionUpdated,
    TokenUsage,
    TranscriptionCompleted,
    TranscriptionDelta,
    TranscriptionFailed,
    TranscriptionSession,
    VllmDelta,
    VllmDone,
    VllmError,
    VllmUsage,
    new_id,
)
from speechserve.server.settings import ServerSettings
from speechserve.server.state import ModelRegistry

log = logging.getLogger("speechserve.server")

Send = Callable[[BaseModel], Awaitable[None]]
OPENAI, VLLM = "openai", "vllm"
NOT_SERVED = frozenset({
    "response.create", "response.cancel", "conversation.item.create", "conversation.item.delete",
    "conversation.item.retrieve", "conversation.item.truncate", "output_audio_buffer.clear",
})  # fmt: skip
"""OpenAI client events of conversation sessions, which a transcription server does not serve."""


class RealtimeSession:
    """Lifetime: one WebSocket connection (``open`` … ``close``)."""

    def __init__(
        self, settings: ServerSettings, registry: ModelRegistry, metrics: ServerMetrics, send: Send,
        query: Mapping[str, str],
    ) -> None:  # fmt: skip
        self.settings, self.registry, self.metrics, self._send = settings, registry, metrics, send
        self.id = new_id("sess")
        self.query = query
        self.url_dialect = OPENAI if ("intent" in query or "model" in query) else VLLM
        self.dialect: str | None = None
        """Fixed by the first event that tells (see the module docstring); the URL's guess until then."""
        self.config = SessionSettings()
        self.current: Item | None = None
        """The utterance appends go to (None: the next append opens one)."""
        self.items: dict[str, Item] = {}
        """Every utterance the engine still has (the current one and those finishing)."""
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.last_committed: str | None = None

    @property
    def speaks(self) -> str:
        return self.dialect or self.url_dialect

    @property
    def rate(self) -> int:
        return self.config.rate or (OPENAI_RATE if self.speaks == OPENAI else VLLM_RATE)

    # ---- connection ------------------------------------------------------------------------------------------
    async def open(self) -> bool:
        """``session.created`` (then an ``error`` if the URL's model is refused); False when no model here
        serves realtime, so the connection should close."""
        error, name = None, self.query.get("model") or None
        try:
            self.config = config.apply(self.config, Change(model=name), self.registry, self.settings, False)
        except Exception as exc:
            error = exc
            self.config = SessionSettings(model_name=name)  # appends fail the same way until a model is named
        await self._send(SessionCreated(session=self._shown(), id=self.id))
        if error is None:
            return True
        await self.error(error)
        return any(m.supports("realtime") for m in self.registry.models)

    async def close(self) -> None:
        """The client went away (or the server closes): every stream cancelled, its slot freed."""
        for item in list(self.items.values()):
            item.cancel()
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for item in list(self.items.values()):
            self._forget(item)
        self.current = None

    async def handle(self, text: str) -> None:
        """One client message; any refusal becomes an ``error`` event."""
        event_id = None
        try:
            event = self._parse(text)
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            if not isinstance(event.get("type"), str):
                raise RealtimeError(INVALID_EVENT, "an event is a JSON object with a string 'type'", "type")
            await self._dispatch(event)
        except Exception as exc:
            if not isinstance(exc, SpeechServeError):
                log.exception("realtime session %s: unexpected failure on an event", self.id)
            await self.error(exc, event_id)

    async def binary(self) -> None:
        await self.error(RealtimeError(INVALID_EVENT, "binary messages are not events; send JSON text"))

    def _parse(self, text: str) -> dict[str, Any]:
        cap = self.settings.realtime_max_event_mb * 1_000_000
        if len(text) > cap:
            raise RealtimeError(
                EVENT_TOO_LARGE,
                f"the event is {len(text) / 1e6:.2f} MB; events may have at most {cap / 1e6:.2f} MB "
                "(realtime_max_event_mb): send the audio in smaller appends",
            )
        try:
            event = json.loads(text)
        except ValueError as exc:
            raise RealtimeError(INVALID_JSON, f"the event is not valid JSON: {exc}") from None
        if not isinstance(event, dict):
            raise RealtimeError(INVALID_EVENT, "an event is a JSON object with a string 'type'", "type")
        return event

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "session.update":
            await self._session_update(event)
        elif kind == "transcription_session.update":
            await self._beta_update(event)
        elif kind == "input_audio_buffer.append":
            self._append(event)
        elif kind == "input_audio_buffer.commit":
            await self._commit(event)
        elif kind == "input_audio_buffer.clear":
            await self._clear()
        elif kind in NOT_SERVED:
            raise RealtimeError(
                UNSUPPORTED_EVENT, f"{kind} is not served: this server only transcribes", "type"
            )
        else:
            raise RealtimeError(UNKNOWN_EVENT, f"unknown event type {kind!r}", "type")

    # ---- settings ----------------------------------------------------------------------------------------------
    def _decide(self, dialect: str) -> None:
        if self.dialect is None:
            self.dialect = dialect

    def _shown(self) -> TranscriptionSession:
        return self.config.show(self.id, self.rate)

    def _configure(self, change: Change) -> None:
        streaming = self.current is not None
        self.config = config.apply(self.config, change, self.registry, self.settings, streaming)

    async def _session_update(self, event: dict[str, Any]) -> None:
        if "session" not in event:  # vLLM's form: {type, model}
            self._decide(VLLM)
            self._configure(config.vllm_change(event))
            return
        self._decide(OPENAI)
        self._configure(config.openai_change(event["session"]))
        await self._send(SessionUpdated(session=self._shown()))

    async def _beta_update(self, event: dict[str, Any]) -> None:
        self._decide(OPENAI)
        self._configure(config.beta_change(event.get("session") or {}))
        await self._send(BetaSessionUpdated(session=self._shown().beta()))

    # ---- audio -------------------------------------------------------------------------------------------------
    def _append(self, event: dict[str, Any]) -> None:
        if "audio" not in event:
            raise RealtimeError(
                MISSING_PARAMETER, "input_audio_buffer.append needs 'audio' (base64 PCM16)", "audio"
            )
        pcm = decode_pcm16(event["audio"])
        if not pcm.size:
            return
        seconds = pcm.size / self.rate
        buffered = sum(item.buffered_seconds for item in self.items.values())
        cap = self.settings.realtime_max_buffer_seconds
        if buffered + seconds > cap:
            raise RealtimeError(
                BUFFER_FULL,
                f"{buffered + seconds:.2f} s of audio would wait to be heard; a session may have at most "
                f"{cap:g} s waiting (realtime_max_buffer_seconds): this audio was dropped, send it slower",
                "audio",
            )
        item = self.current or self._open_item()
        item.push(pcm)

    def _open_item(self) -> Item:
        cfg = self.config
        if cfg.model is None:
            self.config = cfg = config.apply(cfg, Change(), self.registry, self.settings, False)
        assert cfg.model is not None
        item = Item(new_id("item"), cfg.model, cfg.delay, self.rate, cfg.language)
        if self.speaks == OPENAI:
            self._start(item)
        self.current = item
        self.items[item.id] = item
        return item

    def _start(self, item: Item) -> None:
        item.start()
        self.items[item.id] = item
        item.model.in_flight[item.id] = item
        self.metrics.text_in_flight.inc()
        self.tasks[item.id] = asyncio.create_task(self._run(item), name=f"realtime-{item.id}")

    async def _commit(self, event: dict[str, Any]) -> None:
        if "final" in event:
            self._decide(VLLM)
        if self.speaks == VLLM:
            return await self._vllm_commit(bool(event.get("final")))
        item = self.current
        if item is None:
            raise RealtimeError(
                COMMIT_EMPTY, "the input audio buffer is empty: append audio before committing"
            )
        self.current = None
        item.close()
        await self._committed(item)

    async def _vllm_commit(self, final: bool) -> None:
        item = self.current
        if item is None and final:
            raise RealtimeError(
                COMMIT_EMPTY, "nothing to finish: start with input_audio_buffer.commit and send audio"
            )
        if item is None:
            item = self._open_item()
        if not item.started:
            self._start(item)
        if final:
            self.current = None
            item.close()

    async def _committed(self, item: Item) -> None:
        await self._send(BufferCommitted(item_id=item.id, previous_item_id=self.last_committed))
        self.last_committed = item.id

    async def _clear(self) -> None:
        item, self.current = self.current, None
        if item is not None:
            item.cancel()
            task = self.tasks.get(item.id)
            if task is not None:
                task.cancel()
            self._forget(item)
        await self._send(BufferCleared())

    # ---- an item's text ------------------------------------------------------------------------------------------
    async def _run(self, item: Item) -> None:
        """Deltas as they are generated, then the item's completion (or failure)."""
        try:
            async for delta in item.deltas():
                await self._send(TranscriptionDelta(item_id=item.id, delta=delta) if self.speaks == OPENAI else VllmDelta(delta=delta))  # fmt: skip
            if item.cancelled:
                return
            if item is self.current:  # the model ended the utterance before the client committed
                self.current = None
                item.closed = True
                if self.speaks == OPENAI:
                    await self._committed(item)
            await self._send(self._done(item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if item is self.current:
                self.current = None
            log.warning("realtime session %s: item %s failed: %s", self.id, item.id, exc)
            detail = error_detail(exc)
            self.metrics.errors.labels(type=detail.code or "processing_error").inc()
            event = TranscriptionFailed(item_id=item.id, error=detail) if self.speaks == OPENAI else VllmError(error=detail.message, code=detail.code)  # fmt: skip
            await self._send(event)
        finally:
            self._forget(item)

    def _done(self, item: Item) -> BaseModel:
        result = item.result()
        u = result.usage
        if self.speaks == VLLM:
            usage = VllmUsage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, total_tokens=u.total_tokens)  # fmt: skip
            return VllmDone(text=result.text, usage=usage)
        usage = TokenUsage(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens, total_tokens=u.total_tokens)  # fmt: skip
        return TranscriptionCompleted(item_id=item.id, transcript=result.text, usage=usage)

    def _forget(self, item: Item) -> None:
        """Account for an item once, however it ended."""
        self.tasks.pop(item.id, None)
        if self.items.pop(item.id, None) is None or not item.started:
            return
        item.model.in_flight.pop(item.id, None)
        self.metrics.text_in_flight.dec()
        self.metrics.text_tokens.inc(item.completion_tokens)
        self.metrics.audio_input_seconds.inc(item.seconds)
        if not item.finished:
            self.metrics.text_cancelled.inc()

    async def error(self, exc: BaseException, event_id: str | None = None) -> None:
        """An ``error`` event in the session's dialect."""
        detail = error_detail(exc, event_id)
        self.metrics.errors.labels(type=detail.code or detail.type).inc()
        if self.speaks == VLLM:
            await self._send(VllmError(error=detail.message, code=detail.code))
        else:
            await self._send(ErrorEvent(error=detail))
