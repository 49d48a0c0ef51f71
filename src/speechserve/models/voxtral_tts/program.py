"""Voxtral TTS's engine program: what the shared loop drives for speech.

- admission (``begin``): prompt embeddings (preset voice rows, or a reference clip through the codec
  encoder — once per request) on the engine thread;
- ``sample``: the flow head for every ready sequence in one batch (semantic argmax + CFG Euler steps, the
  conditional and unconditional branches as one 2B batch) → 37 codes per sequence; END finishes;
- ``emit``: the due chunks of every stream decoded by the incremental codec in one batched call per chunk
  length (``Scheduler.chunk_due``'s deadline-aware policy);
- ``advance``: the new frames' codebook embeddings through one batched backbone decode step.

On CUDA the decode step and the flow head replay bucketed CUDA graphs (``graphs.py``) unless ``eager``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from speechserve.engine.core import EngineConfig
from speechserve.engine.kv_slots import slot_bytes
from speechserve.engine.program import Sink, Status
from speechserve.engine.request import SpeechRequest
from speechserve.engine.scheduler import Scheduler
from speechserve.engine.stream import AudioStream
from speechserve.errors import InvalidRequest
from speechserve.models.voxtral_tts.codec_stage import CodecStage
from speechserve.models.voxtral_tts.config import END_AUDIO_CODE
from speechserve.models.voxtral_tts.generation import request_noise
from speechserve.models.voxtral_tts.pipeline import VoxtralTTSPipeline
from speechserve.models.voxtral_tts.runner import TTSModelRunner
from speechserve.models.voxtral_tts.sequence import TTSSequence
from speechserve.options import AudioChunk


class VoxtralTTSProgram:
    """Lifetime: its engine's. ``runner`` owns the KV slots; ``hot`` is the runner or its graphed twin."""

    def __init__(self, pipeline: VoxtralTTSPipeline, config: EngineConfig) -> None:
        self.pipeline, self.config = pipeline, config
        model = pipeline.model
        self.model = model
        self.frame_seconds = pipeline.samples_per_frame / pipeline.sample_rate
        self.n_acoustic = model.cfg.codes.n_acoustic_codebook
        self.default_steps = model.cfg.flow.n_decoding_steps
        self.codec = CodecStage(model.audio_tokenizer, pipeline.device)
        self.runner: TTSModelRunner | None = None
        self.hot: Any = None
        self._max_len = config.max_seq_len

    # ---- sizing --------------------------------------------------------------------------------------------
    def max_seq_len(self, requested: int) -> int:
        return requested

    def slot_bytes(self, max_len: int) -> int:
        return slot_bytes(self.model.cfg.backbone, max_len, self.model.backbone.norm.weight.dtype.itemsize)

    def allocate(self, n_slots: int, max_len: int) -> None:
        self._max_len = max_len
        self.runner = TTSModelRunner(self.model, n_slots, max_len)
        self.hot = self.runner  # decode + flow head; bucketed CUDA graphs on GPU unless eager
        if not self.config.eager and self.runner.device.type == "cuda":
            from speechserve.models.voxtral_tts.graphs import GraphedRunner

            self.hot = GraphedRunner(self.runner, use_graphs=True)

    # ---- requests ------------------------------------------------------------------------------------------
    def open_stream(self, request: SpeechRequest, loop: asyncio.AbstractEventLoop) -> AudioStream:
        return AudioStream(request.request_id, 0, loop)

    def new_sequence(self, request: SpeechRequest, sink: Sink) -> TTSSequence:
        """Voice, text and length checks on the caller's thread (tokenization only: cheap)."""
        ids = self.pipeline.prompt_ids(request.text, request.voice, request.ref_audio)
        if ids is not None:
            self._check_room(len(ids))
            sink.usage.input_tokens = len(ids)  # type: ignore[attr-defined]
        noise = request_noise(request.options, self.n_acoustic)
        return TTSSequence(request, sink, prompt_ids=ids, noise=noise, arrival=time.monotonic())

    def _check_room(self, n_prompt: int) -> None:
        if self._max_len - n_prompt < 1:
            raise InvalidRequest(
                f"input is too long: {n_prompt} prompt tokens leave no room in the {self._max_len}-position context",
                param="input",
            )

    def begin(self, seq: TTSSequence) -> None:
        """Prompt embeddings on the engine thread (a raw reference clip is encoded here, once)."""
        req = seq.request
        ids, embeds = self.pipeline.prompt(req.text, req.voice, req.ref_audio, ids=seq.prompt_ids)
        if seq.prompt_ids is None:
            self._check_room(len(ids))
            seq.sink.usage.input_tokens = len(ids)
        seq.prompt_ids, seq.prompt_embeds = ids, embeds

    def max_frames(self, seq: TTSSequence) -> int:
        return min(seq.request.options.max_frames, self._max_len - seq.prompt_len)

    # ---- the step ------------------------------------------------------------------------------------------
    def prefill(self, seq: TTSSequence, start: int, n: int) -> None:
        hidden = self.runner.prefill(seq.slot, seq.prompt_embeds[start : start + n], start)  # type: ignore[union-attr,index]
        seq.n_prefilled = start + n
        if seq.n_prefilled == seq.prompt_len:
            seq.hidden, seq.status = hidden, Status.DECODING  # frame 0 comes from the prefill hidden

    def is_ready(self, seq: TTSSequence) -> bool:
        return seq.hidden is not None

    def sample(self, ready: list[TTSSequence]) -> None:
        """The flow head for the whole batch → one frame of 37 codes per sequence."""
        dev = self.runner.device  # type: ignore[union-attr]
        hidden = torch.stack([s.hidden for s in ready])  # type: ignore[misc]
        noise = torch.stack([s.noise(s.n_generated) for s in ready]).to(dev, torch.float32)  # type: ignore[misc]
        alpha = torch.tensor([s.request.options.cfg_alpha for s in ready], device=dev)
        steps = [s.request.options.n_decoding_steps or self.default_steps for s in ready]
        if len(set(steps)) == 1:
            codes = self.hot.frame_head(hidden, noise, alpha, steps[0])
        else:  # rare: requests asked for different step counts; one head call per group
            codes = torch.empty(len(ready), 1 + self.n_acoustic, dtype=torch.long, device=dev)
            for n in set(steps):
                idx = torch.tensor([i for i, k in enumerate(steps) if k == n])
                codes[idx] = self.hot.frame_head(hidden[idx], noise[idx], alpha[idx], n)
        for seq, row, device_row in zip(ready, codes.cpu(), codes, strict=True):
            seq.hidden = None
            if int(row[0]) == END_AUDIO_CODE and seq.request.options.ignore_end:
                row = row.clone()
                row[0] = END_AUDIO_CODE + 1  # forced-length benchmark runs: continue with a real code
            elif int(row[0]) == END_AUDIO_CODE:
                seq.finish("end")
                continue
            seq.frames.append(row)
            seq.fed_codes = device_row
            seq.sink.usage.output_tokens += 1
            if seq.n_generated >= self.max_frames(seq):
                seq.finish("length")

    def emit(self, seqs: list[TTSSequence], pacing: Scheduler, clock: Callable[[], float]) -> None:
        """Decode every stream's due chunk (one batched codec call per chunk length) and deliver it."""
        now = clock()
        due = [
            (
                s,
                pacing.chunk_due(
                    s, now, s.request.options.first_chunk_frames, s.request.options.max_chunk_frames
                ),
            )
            for s in seqs
        ]
        due = [(s, n) for s, n in due if n > 0]
        if not due:
            return
        jobs = [
            (s.codec_state or self.codec.new_state(), torch.stack(s.frames[s.n_emitted : s.n_emitted + n]))
            for s, n in due
        ]
        decoded = self.codec.decode(jobs)
        now = clock()
        for (seq, n), (samples, state) in zip(due, decoded, strict=True):
            seq.codec_state = state
            first = seq.n_emitted
            seq.n_emitted += n
            if seq.first_audio_at is None:
                seq.first_audio_at = now
            last = seq.finished and seq.pending == 0
            seq.delivered_last = last
            seq.sink.deliver(AudioChunk(samples.numpy(), self.pipeline.sample_rate, first, n, last))

    def advance(self, cont: list[TTSSequence]) -> None:
        """Feed the new frames back: codebook embeddings → one batched backbone decode step."""
        codes = torch.stack([s.fed_codes for s in cont])  # the head's own codes (END stays END when forced)
        embeds = self.runner.embed_frames(codes)  # type: ignore[union-attr]
        hidden = self.hot.decode([s.slot for s in cont], [s.position for s in cont], embeds)
        for seq, h in zip(cont, hidden, strict=True):
            seq.hidden = h

    def finish(self, seq: TTSSequence) -> None:
        """A stream that ended with nothing left to decode still gets its closing (empty, last) chunk."""
        if not seq.delivered_last:
            seq.sink.deliver(
                AudioChunk(np.zeros(0, np.float32), self.pipeline.sample_rate, seq.n_emitted, 0, True)
            )
