"""``POST /v1/audio/speech`` logic: validate and plan a request, drive the engine, pick the delivery.

Talks to the engine through :class:`SpeechGeneration`; knows the settings and the metrics; leaves HTTP
details of each delivery to ``responses.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from functools import partial

from fastapi import Request, Response

from speechserve.audio import decode_base64_audio
from speechserve.errors import EncoderWeightsMissing, InvalidRequest
from speechserve.options import RefAudio, SynthesisOptions
from speechserve.server.headers import ignored_fields_header
from speechserve.server.metrics import ServerMetrics
from speechserve.server.settings import ServerSettings
from speechserve.server.speech import responses
from speechserve.server.speech.capability import SpeechPipeline
from speechserve.server.speech.generation import SpeechGeneration, SpeechPlan
from speechserve.server.speech.protocol import CreateSpeechRequest, Delivery, is_blank
from speechserve.server.state import ModelRegistry, ServedModel
from speechserve.server.streaming import CLIENT_CLOSED_REQUEST, ClientGone, peek


class SpeechService:
    """Answers speech requests for the models of a registry. Lifetime: the app's lifespan."""

    def __init__(self, settings: ServerSettings, registry: ModelRegistry, metrics: ServerMetrics) -> None:
        self.settings, self.registry, self.metrics = settings, registry, metrics

    @staticmethod
    def ignored_fields(body: CreateSpeechRequest, model: ServedModel, plan: SpeechPlan) -> list[str]:
        """The request's fields that change nothing for this model and plan (``X-Ignored-Fields``; the speech
        websocket's ``session.updated.ignored_fields``)."""
        applied = set(model.pipeline.speech_fields) - ({"ref_text"} if plan.ref_audio is None else set())
        ignored = body.ignored_fields(applied)
        if body.voice is not None and (plan.ref_audio is not None or model.voices is None):
            ignored.insert(0, "voice")  # ref_audio takes precedence over a preset; some models have none
        return ignored

    async def create(self, body: CreateSpeechRequest, request: Request) -> Response:
        model = self.registry.for_task(body.model, "speech")
        delivery = body.delivery()
        plan = await self.plan(body, model)
        ignored = self.ignored_fields(body, model, plan)
        # tokenizing every segment happens off the event loop; embeddings are built on the engine thread
        loop = asyncio.get_running_loop()
        gen = await asyncio.to_thread(
            SpeechGeneration.submit, model.engine, plan, f"gen-{uuid.uuid4().hex}", loop
        )
        self.track_open(gen, model)
        finish = partial(self.track_closed, gen, model)
        try:  # until a streaming response owns ``finish``, every way out of here runs it
            headers = self._headers(gen, plan, ignored)
            return await self._respond(gen, delivery, headers, request, finish)
        except ClientGone:  # it left before its response started: nobody to answer
            finish()
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except BaseException:
            finish()
            raise

    async def _respond(
        self, gen: SpeechGeneration, delivery: Delivery, headers: dict[str, str], request: Request,
        finish: Callable[[], None],
    ) -> Response:  # fmt: skip
        if delivery == "file":
            try:
                return await responses.complete_file(gen, headers, request)
            finally:
                finish()
        first, rest = await peek(gen.samples(), request)
        stream = responses.sse_stream if delivery == "sse" else responses.audio_stream
        return stream(gen, first, rest, headers, finish)

    async def plan(self, body: CreateSpeechRequest, model: ServedModel) -> SpeechPlan:
        """Validate everything that does not need the engine and decide how to generate."""
        s = self.settings
        pipeline: SpeechPipeline = model.pipeline
        text = body.input
        if len(text) > s.max_input_chars:
            raise InvalidRequest(
                f"input is {len(text)} characters long; the limit is {s.max_input_chars}", param="input"
            )
        if is_blank(text):
            raise InvalidRequest("input must not be empty (or only whitespace)", param="input")
        ref_audio = await self._ref_audio(body, model)
        presets = model.voices if ref_audio is None else None  # a model without presets takes voice=None
        voice = presets.resolve(body.voice_name()) if presets is not None else None
        fields = body.option_fields() | ({} if ref_audio is None else {"ref_audio": ref_audio})
        base = body.to_options(s.max_frames, s.first_chunk_frames, s.max_chunk_frames)
        options = pipeline.speech_options(fields, base)
        return SpeechPlan(
            segments=pipeline.speech_segments(text, options, s.segment_chars),
            voice=voice,
            ref_audio=ref_audio,
            options=options,
            # the server's own options count max_tokens in frames of the whole response (see capability.py)
            max_frames=body.max_tokens if isinstance(options, SynthesisOptions) else None,
            speed=body.speed,
            sample_rate=body.sample_rate or pipeline.sample_rate,
            response_format=body.response_format,
            crossfade_samples=round(s.crossfade_ms * pipeline.sample_rate / 1000),
        )

    async def _ref_audio(self, body: CreateSpeechRequest, model: ServedModel) -> RefAudio | None:
        if body.ref_audio is None:
            return None
        if not model.pipeline.supports_voice_cloning:
            raise EncoderWeightsMissing()
        rate = model.pipeline.sample_rate
        try:
            samples, _ = await asyncio.to_thread(decode_base64_audio, body.ref_audio, rate)
        except InvalidRequest as exc:
            raise InvalidRequest(f"ref_audio: {exc}", param="ref_audio") from exc
        # encoded once per request (codec encoder, off the event loop), reused by every segment
        return await asyncio.to_thread(model.pipeline.clone_voice, (samples, rate))

    @staticmethod
    def _headers(gen: SpeechGeneration, plan: SpeechPlan, ignored: list[str]) -> dict[str, str]:
        headers = {
            "X-Generation-Id": gen.id,
            "X-Usage-Input-Tokens": str(gen.usage.input_tokens),
            "X-Speech-Segments": str(len(plan.segments)),
        }
        if ignored:
            headers["X-Ignored-Fields"] = ignored_fields_header(ignored)
        return headers

    def track_open(self, gen: SpeechGeneration, model: ServedModel) -> None:
        """Count a generation in flight (the HTTP route and the speech websocket both call this)."""
        model.in_flight[gen.id] = gen
        self.metrics.in_flight.inc()

    def track_closed(self, gen: SpeechGeneration, model: ServedModel) -> None:
        """Account for a generation once, however its response ended."""
        if model.in_flight.pop(gen.id, None) is None:
            return
        gen.close()
        m = self.metrics
        m.in_flight.dec()
        m.frames.inc(gen.frames)
        m.audio_seconds.inc(gen.frames * model.pipeline.samples_per_frame / model.pipeline.sample_rate)
        if gen.cancelled:
            m.cancelled.inc()
        if gen.first_audio_at is not None:
            m.ttfa.observe(gen.first_audio_at - gen.started_at)
        if gen.finished_at is not None and gen.frames:
            audio = gen.frames * model.pipeline.samples_per_frame / model.pipeline.sample_rate
            m.rtf.observe((gen.finished_at - gen.started_at) / audio)
        if gen.error is not None:
            m.errors.labels(type="generation_failed").inc()
