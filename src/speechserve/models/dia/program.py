"""Dia's engine program: what the shared loop drives for dialogue speech.

- admission (``begin``): the encoder on [text; zeros] and every decoder layer's cross keys/values, once per
  request (a raw reference clip is DAC-encoded here too); ``prefill`` feeds the BOS row (and the audio
  prompt's rows, in chunks) into the request's KV slot, leaving the logits of its first generated row;
- ``sample``: the CFG filter and the sampler for every ready request (each with its own generator) → one
  delayed row each; BOS/prompt cells forced, EOS countdown; a request ends 15 rows after its EOS;
- ``emit``: frames the delay pattern has completed — and that have the DAC's right context — are decoded in
  windows (one batched DAC call per window length) and delivered as ``Scheduler.chunk_due`` says;
- ``advance``: the new rows of every running request through one decoder call (conditional and
  unconditional rows together, 2B rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from speechserve.engine.core import EngineConfig
from speechserve.engine.program import Sink, Status
from speechserve.engine.request import SpeechRequest
from speechserve.engine.scheduler import Scheduler
from speechserve.engine.stream import AudioStream
from speechserve.errors import InvalidRequest, UnsupportedFeature
from speechserve.models.dia.generation import (
    DiaStream,
    advance_streams,
    max_rows,
    new_rows,
    prefill_stream,
    sample_streams,
)
from speechserve.models.dia.pipeline import NO_DAC_ENCODER, DiaPipeline, DiaVoicePrompt, as_dia_options
from speechserve.models.dia.runner import DiaRunner
from speechserve.models.dia.sampling import new_generator
from speechserve.models.dia.sequence import DiaSequence
from speechserve.options import AudioChunk


class DiaProgram:
    """Lifetime: its engine's. ``runner`` owns the KV slots (two decoder rows per slot)."""

    def __init__(self, pipeline: DiaPipeline, config: EngineConfig) -> None:
        self.pipeline, self.config = pipeline, config
        self.cfg = pipeline.cfg
        self.codec = pipeline.codec
        self.frame_seconds = pipeline.samples_per_frame / pipeline.sample_rate
        self.runner: DiaRunner | None = None
        self._max_len = self.max_seq_len(config.max_seq_len)

    # ---- sizing --------------------------------------------------------------------------------------------
    def max_seq_len(self, requested: int) -> int:
        return min(requested, self.cfg.decoder.max_positions)

    def slot_bytes(self, max_len: int) -> int:
        dec = self.cfg.decoder
        return (
            2 * 2 * dec.num_layers * dec.num_kv_heads * dec.head_dim * max_len * self.pipeline.dtype.itemsize
        )

    def allocate(self, n_slots: int, max_len: int) -> None:
        self._max_len = max_len
        self.runner = DiaRunner(self.pipeline.model, n_slots, max_len)

    # ---- requests ------------------------------------------------------------------------------------------
    def open_stream(self, request: SpeechRequest, loop: asyncio.AbstractEventLoop) -> AudioStream:
        return AudioStream(request.request_id, 0, loop)

    def new_sequence(self, request: SpeechRequest, sink: Sink) -> DiaSequence:
        """Text, options and length checks on the caller's thread (byte encoding only: cheap)."""
        options = as_dia_options(request.options)
        if request.voice is not None:
            raise InvalidRequest(
                "Dia has no preset voices: choose speakers with [S1]/[S2] tags in the text, or clone one with "
                "ref_audio and ref_text",
                param="voice",
            )
        cloning = request.ref_audio is not None
        if cloning and not self.pipeline.supports_voice_cloning:
            raise UnsupportedFeature(NO_DAC_ENCODER, param="ref_audio")
        ids = self.pipeline.text_ids(request.text, options, cloning)
        prompt = request.ref_audio.codes if isinstance(request.ref_audio, DiaVoicePrompt) else None
        seq = DiaSequence(request, sink, options=options, text_ids=ids, generator=new_generator(options.seed), prompt=prompt)  # fmt: skip
        if not cloning or prompt is not None:
            max_rows(self.cfg, options, seq.prompt_len, self._max_len)  # InvalidRequest when nothing fits
        sink.usage.input_tokens = len(ids)  # type: ignore[attr-defined]
        return seq

    def begin(self, seq: DiaSequence) -> None:
        """Encoder + cross keys/values on the engine thread (a raw reference clip is DAC-encoded here)."""
        if seq.request.ref_audio is not None and seq.prompt is None:
            seq.prompt = self.pipeline.clone_voice(seq.request.ref_audio).codes
        rows = new_rows(self.cfg, seq.options, self._max_len, seq.prompt)
        text = self.runner.encode(seq.text_ids)  # type: ignore[union-attr]
        seq.stream = DiaStream(text, rows, seq.options, seq.generator, slot=seq.slot)

    # ---- the step ------------------------------------------------------------------------------------------
    def prefill(self, seq: DiaSequence, start: int, n: int) -> None:
        prefill_stream(self.runner, seq.stream, start, n)  # type: ignore[arg-type]
        seq.n_prefilled = start + n
        if seq.n_prefilled == seq.prompt_len:
            seq.status = Status.DECODING

    def is_ready(self, seq: DiaSequence) -> bool:
        return seq.stream is not None and seq.stream.logits is not None

    def sample(self, ready: list[DiaSequence]) -> None:
        """CFG filter + sampler for the whole batch → one delayed row per request."""
        sample_streams([s.stream for s in ready], self.cfg.eos_id)  # type: ignore[misc]
        for seq in ready:
            rows = seq.stream.rows  # type: ignore[union-attr]
            if rows.finished:
                seq.finish("end" if rows.natural_eos else "length")

    def emit(self, seqs: list[DiaSequence], pacing: Scheduler, clock: Callable[[], float]) -> None:
        """Decode every stream's due frames (windowed DAC, batched by window length) and deliver them."""
        for seq in seqs:
            if seq.stream is not None:
                seq.n_decodable = self.codec.decodable(seq.stream.rows)
        now = clock()
        due = [
            (s, pacing.chunk_due(s, now, s.options.first_chunk_frames, s.options.max_chunk_frames))
            for s in seqs
        ]
        due = [(s, n) for s, n in due if n > 0]
        if not due:
            return
        pcm = self.codec.decode([(s.stream.rows, s.n_emitted, s.n_emitted + n) for s, n in due])  # type: ignore[union-attr]
        now = clock()
        for (seq, n), samples in zip(due, pcm, strict=True):
            first = seq.n_emitted
            seq.n_emitted += n
            seq.sink.usage.output_tokens += n
            if seq.first_audio_at is None:
                seq.first_audio_at = now
            seq.delivered_last = seq.n_emitted == seq.stream.rows.n_frames  # type: ignore[union-attr]
            seq.sink.deliver(AudioChunk(samples, self.pipeline.sample_rate, first, n, seq.delivered_last))

    def advance(self, cont: list[DiaSequence]) -> None:
        """The new rows of every continuing request through one decoder step (2B rows)."""
        advance_streams(self.runner, [s.stream for s in cont])  # type: ignore[arg-type,misc]

    def finish(self, seq: DiaSequence) -> None:
        """A stream that ended with nothing left to decode still gets its closing (empty, last) chunk."""
        if not seq.delivered_last:
            seq.sink.deliver(
                AudioChunk(np.zeros(0, np.float32), self.pipeline.sample_rate, seq.n_emitted, 0, True)
            )
