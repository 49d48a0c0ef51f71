"""One ``WS /v1/audio/speech/stream`` connection: text in as it is written, each sentence's audio out as soon
as the sentence has ended. Transport-free: it takes client messages and hands events and audio to ``send``.

Two sides run at once, so reading text never waits for audio:

- the **receive side** (:meth:`StreamSession.handle`) cuts text into sentences (``LiveSegmenter``) and queues
  them; the first queued sentence is submitted to the engine at once, and once it has its first audio
  the next ``SENTENCES_AHEAD`` are too, so they generate (batched with everyone else's) while it is still
  being sent, without slowing its first audio;
- the **speaker** task sends the queue strictly in order: ``audio.start``, audio, ``audio.done`` per sentence,
  ``session.done`` at each ``input.done``.

Each sentence is generated exactly as ``POST /v1/audio/speech`` would generate it alone: the plan comes from
:meth:`SpeechService.plan` of the session's config (built once per ``session.config``, so a reference voice
is encoded once), with that sentence's segments. ``input.cancel`` stops the speaker, cancels every queued
generation (each engine slot is freed at the engine's next step) and drops the unspoken text; the session
goes on with the next utterance.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from speechserve.audio import StreamingEncoder, encode_audio
from speechserve.errors import SpeechServeError
from speechserve.server.speech import stream_protocol as p
from speechserve.server.speech.generation import SpeechGeneration
from speechserve.server.speech.protocol import is_blank
from speechserve.server.speech.serving import SpeechService
from speechserve.server.speech.stream_config import (
    StreamError,
    Voice,
    check_fields,
    configure,
    error_event,
    parse_event,
)
from speechserve.tts.segmentation import LiveSegmenter

log = logging.getLogger("speechserve.server")

Send = Callable[[BaseModel | bytes], Awaitable[None]]
SENTENCES_AHEAD = 1
"""Sentences generated ahead of the one being sent: enough to keep audio flowing across a sentence end,
few enough that a barge-in wastes little work."""
UNSPOKEN_CHARS_PER_INPUT = 16
"""A session holds at most this many ``max_input_chars`` of text waiting to be spoken (memory stays bounded
however fast a client writes; an LLM's answer is far shorter)."""


@dataclass(eq=False)
class Sentence:
    utterance: int
    index: int
    text: str
    voice: Voice
    submission: asyncio.Task[SpeechGeneration] | None = None
    started: bool = False
    """``audio.start`` sent (and ``audio.done`` owed until ``finished``)."""
    finished: bool = False
    audible: bool = False
    """Its first audio has been generated."""
    bytes_sent: int = 0


@dataclass(eq=False)
class Flush:
    """``input.done``: the speaker ends the utterance here."""

    utterance: int


@dataclass(eq=False)
class Drain:
    """``session.close``: resolved once everything before it was sent."""

    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class StreamSession:
    """Lifetime: one WebSocket connection (``start`` … ``close``)."""

    def __init__(self, service: SpeechService, send: Send) -> None:
        self.service, self.settings, self._send = service, service.settings, send
        self.voice: Voice | None = None
        self.segmenter = LiveSegmenter("none", self.settings.max_input_chars)
        self.utterance = 0  # the utterance text goes to
        self.open = False  # text arrived since the last input.done
        self.counts: dict[int, int] = {}  # sentences cut from each unfinished utterance
        self.usage: dict[int, p.Usage] = {}
        self.queue: deque[Sentence | Flush | Drain] = deque()
        self._wake = asyncio.Event()
        self._speaker: asyncio.Task[None] | None = None
        self._last_submission: asyncio.Task[SpeechGeneration] | None = None

    @property
    def busy(self) -> bool:
        """Whether anything of this session is queued or being spoken (then it is not idle)."""
        return bool(self.queue)

    def start(self) -> None:
        self._speaker = asyncio.create_task(self._speak_queue(), name="speech-stream-speaker")

    async def close(self) -> None:
        """The connection ended: stop everything, free every engine slot, send nothing more."""
        await self._stop_speaker()
        for item in self.queue:
            if isinstance(item, Sentence):
                self._discard(item)
        self.queue.clear()

    # ---- client messages ---------------------------------------------------------------------------------------
    async def handle(self, text: str) -> Drain | None:
        """One client message; a refusal becomes an ``error`` event. A :class:`Drain` asks the caller to close
        once it resolves (``session.close``)."""
        event: dict[str, Any] = {}
        try:
            event = parse_event(text, int(self.settings.realtime_max_event_mb * 1_000_000))
            return await self._dispatch(event)
        except Exception as exc:
            if not isinstance(exc, SpeechServeError):
                log.exception("speech stream: unexpected failure on an event")
            kind, eid = event.get("type"), event.get("event_id")
            await self.error(exc, event_type=kind if isinstance(kind, str) else None, event_id=eid if isinstance(eid, str) else None)  # fmt: skip
            return None

    async def binary(self) -> None:
        await self.error(StreamError(p.BINARY_NOT_EXPECTED, "binary messages are not events; send JSON text"))

    async def _dispatch(self, event: dict[str, Any]) -> Drain | None:
        kind = event["type"]
        if kind == "session.config":
            await self._configure(event)
        elif kind == "input.text":
            self._text(event)
        elif kind == "input.done":
            check_fields(event, set())
            self._flush()
        elif kind == "input.cancel":
            check_fields(event, set())
            await self._cancel()
        elif kind == "session.close":
            check_fields(event, set())
            if self.open:
                self._flush()  # the words sent are spoken, then the connection closes
            drain = Drain()
            self._enqueue(drain)
            return drain
        else:
            raise StreamError(p.UNKNOWN_EVENT, f"unknown event type {kind!r}", "type")
        return None

    async def _configure(self, event: dict[str, Any]) -> None:
        if self.open:
            raise StreamError(
                p.UTTERANCE_IN_PROGRESS,
                "session.config applies between utterances: send input.done (or input.cancel) first",
            )
        self.voice, shown = await configure(self.service, event)
        granularity = self.voice.stream.split_granularity
        limit = self.settings.max_input_chars if granularity == "none" else self.settings.segment_chars
        self.segmenter = LiveSegmenter(granularity, limit)
        await self._send(shown)

    def _text(self, event: dict[str, Any]) -> None:
        check_fields(event, {"text"})
        if self.voice is None:
            raise StreamError(p.NOT_CONFIGURED, "send session.config before input.text")
        text = event.get("text")
        if not isinstance(text, str):
            raise StreamError(p.INVALID_EVENT, "input.text needs 'text', a string", "text")
        cap = self.settings.max_input_chars
        if len(text) > cap:
            raise StreamError(
                p.FRAGMENT_TOO_LARGE, f"the fragment is {len(text)} characters; send at most {cap} at a time", "text"
            )  # fmt: skip
        unspoken = len(self.segmenter.pending) + sum(
            len(s.text) for s in self.queue if isinstance(s, Sentence) and not s.started
        )
        if unspoken + len(text) > UNSPOKEN_CHARS_PER_INPUT * cap:
            raise StreamError(
                p.BUFFER_FULL,
                f"{unspoken} characters are waiting to be spoken; a session holds at most "
                f"{UNSPOKEN_CHARS_PER_INPUT * cap}: this fragment was dropped, send it once audio has caught up",
                "text",
            )
        if text:
            self.open = True
        for unit in self.segmenter.feed(text):
            self._add_sentence(unit)

    def _flush(self) -> None:
        for unit in self.segmenter.flush():
            self._add_sentence(unit)
        self._enqueue(Flush(self.utterance))
        self.counts.setdefault(self.utterance, 0)
        self.utterance, self.open = self.utterance + 1, False

    def _add_sentence(self, text: str) -> None:
        if is_blank(text) or self.voice is None:
            return
        index = self.counts.get(self.utterance, 0)
        self.counts[self.utterance] = index + 1
        self._enqueue(Sentence(self.utterance, index, text, self.voice))

    def _enqueue(self, item: Sentence | Flush | Drain) -> None:
        self.queue.append(item)
        self._submit_ahead()
        self._wake.set()

    # ---- generation ------------------------------------------------------------------------------------------------
    def _submit_ahead(self) -> None:
        """Submit the first queued sentences not yet submitted (in order: each waits for the one before).

        The sentences after the first wait until it has sent audio: its time to first audio never shares the
        engine with their prefill, and they are still generating long before it has been played."""
        ahead = [s for s in self.queue if isinstance(s, Sentence)][: SENTENCES_AHEAD + 1]
        for i, sentence in enumerate(ahead):
            if i and not (ahead[0].audible or ahead[0].finished):
                return
            if sentence.submission is None:
                before = self._last_submission
                sentence.submission = asyncio.create_task(self._submit(sentence, before))
                self._last_submission = sentence.submission

    async def _submit(self, sentence: Sentence, before: asyncio.Task[Any] | None) -> SpeechGeneration:
        if before is not None:
            await asyncio.wait([before])  # engine order = sentence order
        voice = sentence.voice
        segments = voice.model.pipeline.speech_segments(
            sentence.text, voice.template.options, self.settings.segment_chars
        )
        plan = replace(voice.template, segments=segments)
        loop = asyncio.get_running_loop()
        gen = await asyncio.to_thread(
            SpeechGeneration.submit, voice.model.engine, plan, f"gen-{uuid.uuid4().hex}", loop
        )
        self.service.track_open(gen, voice.model)
        return gen

    def _discard(self, sentence: Sentence) -> None:
        """Cancel a sentence's generation, now or as soon as its submission lands."""
        if sentence.submission is None:
            return

        def stop(task: asyncio.Task[SpeechGeneration]) -> None:
            if not task.cancelled() and task.exception() is None:
                self.service.track_closed(task.result(), sentence.voice.model)  # closes it: the slot is freed

        sentence.submission.add_done_callback(stop)

    # ---- the speaker ------------------------------------------------------------------------------------------------
    async def _speak_queue(self) -> None:
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            head = self.queue[0]
            try:
                if isinstance(head, Flush):
                    await self._send(self._session_done(head.utterance))
                elif isinstance(head, Drain):
                    head.done.set_result(None)
                else:
                    self._submit_ahead()
                    await self._speak(head)
            except Exception:  # a bug, not a client's or a model's error: keep the session serving
                log.exception("speech stream: the speaker failed on %r", head)
            self.queue.popleft()

    def _session_done(self, utterance: int, cancelled: bool = False) -> p.SessionDone:
        total, usage = self.counts.pop(utterance, 0), self.usage.pop(utterance, p.Usage())
        return p.SessionDone(
            utterance_index=utterance, total_sentences=total, cancelled=cancelled, usage=usage
        )

    async def _speak(self, s: Sentence) -> None:
        plan = s.voice.template
        s.started = True
        await self._send(p.AudioStart(
            utterance_index=s.utterance, sentence_index=s.index, sentence_text=s.text,
            format=plan.response_format, sample_rate=plan.sample_rate,
        ))  # fmt: skip
        assert s.submission is not None
        gen, failed = None, False
        try:
            gen = await asyncio.shield(s.submission)
            if s.voice.stream.stream_audio:
                await self._stream(s, gen)
            else:
                await self._file(s, gen)
        except Exception as exc:
            failed = True
            log.warning("speech stream: sentence %d.%d failed: %s", s.utterance, s.index, exc)
            await self.error(exc, utterance_index=s.utterance, sentence_index=s.index)
        usage = self._account(s, gen)
        s.finished = True
        await self._send(p.AudioDone(
            utterance_index=s.utterance, sentence_index=s.index, total_bytes=s.bytes_sent, error=failed,
            usage=usage,
        ))  # fmt: skip

    def _account(self, s: Sentence, gen: SpeechGeneration | None) -> p.Usage:
        """The sentence's usage, added to its utterance's; its generation closed and counted."""
        if gen is None:
            return p.Usage()
        self.service.track_closed(gen, s.voice.model)
        u = gen.usage
        usage = p.Usage(
            input_tokens=u.input_tokens, output_tokens=u.output_tokens, total_tokens=u.total_tokens
        )
        self.usage[s.utterance] = self.usage.get(s.utterance, p.Usage()) + usage
        return usage

    async def _stream(self, s: Sentence, gen: SpeechGeneration) -> None:
        """Encoded audio frames as the samples are generated."""
        encoder = StreamingEncoder(gen.plan.response_format, gen.plan.sample_rate)
        try:
            async for samples in self._samples(s, gen):
                await self._audio(s, encoder.push(samples))
            await self._audio(s, encoder.finish())
        finally:
            encoder.close()

    async def _file(self, s: Sentence, gen: SpeechGeneration) -> None:
        """One frame: the sentence as a complete file (exact WAV sizes), as vLLM-Omni sends by default."""
        parts = [x async for x in self._samples(s, gen)]
        samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        plan = gen.plan
        await self._audio(
            s, await asyncio.to_thread(encode_audio, samples, plan.sample_rate, plan.response_format)
        )

    async def _samples(self, s: Sentence, gen: SpeechGeneration) -> AsyncIterator[np.ndarray]:
        async for samples in gen.samples():
            if not s.audible:
                s.audible = True
                self._submit_ahead()  # its first audio is out: the next sentences may generate now
            yield samples

    async def _audio(self, s: Sentence, data: bytes) -> None:
        if data:
            s.bytes_sent += len(data)
            await self._send(data)

    # ---- barge-in ---------------------------------------------------------------------------------------------------
    async def _cancel(self) -> None:
        """``input.cancel``: stop speaking now, free every engine slot, drop the unspoken text."""
        await self._stop_speaker()
        dropped = []
        for item in self.queue:
            if not isinstance(item, Sentence):
                continue
            self._discard(item)
            if not item.started:
                dropped.append(item.text)
            elif not item.finished:  # the client has its audio.start: close the pair
                usage = self._account(item, _landed(item))
                await self._send(p.AudioDone(
                    utterance_index=item.utterance, sentence_index=item.index, total_bytes=item.bytes_sent,
                    cancelled=True, usage=usage,
                ))  # fmt: skip
        drains = [item for item in self.queue if isinstance(item, Drain)]
        self.queue.clear()
        if self.open:
            self.counts.setdefault(self.utterance, 0)
            self.utterance, self.open = self.utterance + 1, False
        for utterance in sorted(self.counts):
            await self._send(self._session_done(utterance, cancelled=True))
        text = " ".join(t for t in [*dropped, self.segmenter.clear().strip()] if t)
        await self._send(p.InputCancelled(utterance_index=self.utterance, dropped_text=text))
        for drain in drains:
            drain.done.set_result(None)
        self.start()

    async def _stop_speaker(self) -> None:
        speaker, self._speaker = self._speaker, None
        if speaker is not None:
            speaker.cancel()
            await asyncio.gather(speaker, return_exceptions=True)

    # ---- errors -----------------------------------------------------------------------------------------------------
    async def error(self, exc: BaseException, **where: Any) -> None:
        """An ``error`` event for ``exc`` (typed errors keep the code the HTTP routes give them)."""
        event = error_event(exc, **where)
        self.service.metrics.errors.labels(type=event.code).inc()
        await self._send(event)


def _landed(sentence: Sentence) -> SpeechGeneration | None:
    """The sentence's generation if its submission has succeeded."""
    task = sentence.submission
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()
