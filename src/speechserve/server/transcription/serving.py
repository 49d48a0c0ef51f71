"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` logic: read the capped upload, validate,
decode, cut the audio into 30 s prompts, drive the ASR engine, answer in the requested format or as SSE.

Talks to the engine through :class:`TextGeneration`; knows the settings and the metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import PurePath
from typing import Any

import numpy as np
from fastapi import Request, Response

from speechserve.asr import TextDelta, TranscriptionOptions, format_transcription
from speechserve.audio.decode import INPUT_FORMATS
from speechserve.errors import InvalidAudio, UnsupportedAudioFormat, UnsupportedFeature, UnsupportedTask
from speechserve.server.errors import error_object
from speechserve.server.headers import ignored_fields_header, json_safe
from speechserve.server.metrics import ServerMetrics
from speechserve.server.settings import ServerSettings
from speechserve.server.state import TASK_ROUTES, ModelRegistry, ServedModel
from speechserve.server.streaming import (
    CLIENT_CLOSED_REQUEST,
    SSE_DONE,
    SSE_HEADERS,
    ClientGone,
    ClosingStreamingResponse,
    peek,
    sse,
    unless_gone,
)
from speechserve.server.text_generation import Sampling, TextGeneration, TextPrompt, track
from speechserve.server.transcription.protocol import (
    TranscriptionError,
    TranscriptionRequest,
    TranscriptionTextDelta,
    TranscriptionTextDone,
    TranslationRequest,
)
from speechserve.server.uploads import read_form, read_upload, validate_form

log = logging.getLogger("speechserve.server")
TEXT_MEDIA = {"json": "application/json", "verbose_json": "application/json"}

NO_TRANSLATION = (
    "cannot translate through its prompt: Voxtral's transcription prompt (lang:xx[TRANSCRIBE]) has no "
    "translation task, so /v1/audio/translations is not served. Send the audio to POST /v1/chat/completions "
    "with an instruction such as 'Translate this audio into English.' instead."
)


def decode_upload(pipeline: Any, data: bytes, filename: str) -> np.ndarray:
    """16 kHz mono samples of an upload; an undecodable file whose extension is not audio is reported as an
    unsupported format rather than as corrupt."""
    try:
        return pipeline.load_audio(data, "file")
    except InvalidAudio as exc:
        ext = PurePath(filename).suffix.lower().lstrip(".")
        if data and ext and ext not in INPUT_FORMATS:
            raise UnsupportedAudioFormat(
                f"unsupported file format {ext!r} ({exc}); send audio such as {', '.join(INPUT_FORMATS)}",
                "file",
            ) from exc
        raise


def transcription_prompts(pipeline: Any, samples: np.ndarray, opts: TranscriptionOptions) -> list[TextPrompt]:
    """The model's prompts for this audio (for Voxtral: one per 30 s chunk), as its SDK builds them."""
    return [TextPrompt(*p) for p in pipeline.transcription_prompts(samples, opts)]


class TranscriptionService:
    """Answers transcription and translation requests. Lifetime: the app's lifespan."""

    def __init__(self, settings: ServerSettings, registry: ModelRegistry, metrics: ServerMetrics) -> None:
        self.settings, self.registry, self.metrics = settings, registry, metrics

    async def create(self, request: Request) -> Response:
        cap = self.settings.max_upload_bytes
        form = await read_form(request)
        try:
            body = validate_form(TranscriptionRequest, form)
            model = self.registry.for_task(body.model, "transcription")
            opts = self.options(body, model)
            data, filename = await read_upload(form, cap)
        finally:
            await form.close()
        pipeline = model.pipeline
        samples = await asyncio.to_thread(decode_upload, pipeline, data, filename)
        prompts = await asyncio.to_thread(transcription_prompts, pipeline, samples, opts)
        sampling = Sampling(opts.temperature, opts.top_p, opts.seed)
        duration = len(samples) / pipeline.sample_rate
        engine = model.engine
        gen = TextGeneration.submit(engine, f"trsc-{uuid.uuid4().hex}", prompts, sampling, duration, opts.language)  # type: ignore[arg-type]  # fmt: skip
        finish = track(gen, model, self.metrics)
        try:  # until a streaming response owns ``finish``, every way out of here runs it
            return await self._respond(gen, body, request, finish)
        except ClientGone:  # it left before its response started: nobody to answer
            finish()
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except BaseException:
            finish()
            raise

    async def _respond(
        self, gen: TextGeneration, body: TranscriptionRequest, request: Request, finish: Callable[[], None]
    ) -> Response:
        headers = {"X-Generation-Id": gen.id}
        ignored = body.ignored_fields()
        if ignored:
            headers["X-Ignored-Fields"] = ignored_fields_header(ignored)
        if not body.stream:
            try:
                return await self._whole(gen, body, headers, request, ignored)
            finally:
                finish()
        first, rest = await peek(gen.deltas(), request)
        return ClosingStreamingResponse(
            _events(gen, first, rest), finish, media_type="text/event-stream", headers=headers | SSE_HEADERS
        )

    def options(self, body: TranscriptionRequest, model: ServedModel) -> TranscriptionOptions:
        """Validate everything that needs no audio: sampling, language, timestamp granularities."""
        if "word" in (body.timestamp_granularities or []):
            raise UnsupportedFeature(
                "timestamp_granularities: Voxtral gives no word timings; use 'segment' (one segment per 30 s "
                "chunk of audio, timed by the chunk boundaries)",
                "timestamp_granularities",
            )
        opts = body.to_options()
        model.pipeline.tokenizer.check_language(opts.language)  # type: ignore[union-attr]
        return opts

    async def translate(self, request: Request) -> Response:
        """Every served model answers 400 with its reason (404 for an unknown model)."""
        form = await read_form(request)
        try:
            body = validate_form(TranslationRequest, form)
        finally:
            await form.close()
        model = self.registry.get(body.model) if body.model else self.registry.models[0]
        if model.supports("chat"):
            raise UnsupportedTask(f"The model {model.id!r} {NO_TRANSLATION}")
        raise UnsupportedTask(f"The model {model.id!r} does not support {TASK_ROUTES['translation']}")

    @staticmethod
    async def _whole(
        gen: TextGeneration, body: TranscriptionRequest, headers: dict[str, str], request: Request,
        ignored: list[str],
    ) -> Response:  # fmt: skip
        async def drain() -> None:
            async for _ in gen.deltas():
                pass

        await unless_gone(request, drain())  # ClientGone at once if the client leaves, queued or running
        text = format_transcription(gen.result(), body.response_format, body.temperature)
        media = TEXT_MEDIA.get(body.response_format)
        if media is not None and ignored:  # a JSON body lists the ignored fields verbatim too
            listed = json.loads(text) | {"ignored_fields": [json_safe(name) for name in ignored]}
            text = json.dumps(listed, ensure_ascii=False)
        return Response(text, media_type=media or "text/plain; charset=utf-8", headers=headers)


def _delta_event(d: TextDelta) -> bytes:
    return sse(TranscriptionTextDelta(delta=d.text, segment_id=d.segment))


async def _events(
    gen: TextGeneration, first: TextDelta | None, rest: AsyncIterator[TextDelta]
) -> AsyncIterator[bytes]:
    """``transcript.text.delta`` … ``transcript.text.done`` (or a final ``error`` event), then ``[DONE]``."""
    try:
        if first is not None:
            yield _delta_event(first)
        async for delta in rest:
            yield _delta_event(delta)
        yield sse(TranscriptionTextDone.of(gen.result()))
    except Exception as exc:
        log.error("transcription stream %s failed after it started: %s", gen.id, exc)
        yield sse(TranscriptionError(error=error_object(exc)))
    yield SSE_DONE
