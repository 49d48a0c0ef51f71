"""Dia's generation loop, as the reference runs it, built from the two batched phases the engine program
also uses: ``sample_streams`` (the next delayed row of every utterance) and ``advance_streams`` (those rows
through one decoder call). :func:`generate` is the plain loop over them (goldens, tests); the engine
program interleaves the same phases with joins, leaves and streaming.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from speechserve.errors import InvalidRequest
from speechserve.models.dia.config import DiaConfig
from speechserve.models.dia.delay import DelayedRows
from speechserve.models.dia.model import Dia
from speechserve.models.dia.options import DiaOptions
from speechserve.models.dia.runner import DiaRunner, EncodedText
from speechserve.models.dia.sampling import new_generator, sample_rows


@dataclass(eq=False)
class DiaStream:
    """One utterance's generation state (engine-agnostic): its text memory, delayed rows, settings, random
    generator, KV slot and the logits [2, C, V] of its next row (None until the decoder produced them)."""

    text: EncodedText
    rows: DelayedRows
    options: DiaOptions
    generator: torch.Generator
    slot: int = -1
    logits: torch.Tensor | None = None
    trace: list[torch.Tensor] | None = None
    """When a list: every step's logits [2, C, V] are appended (golden runs)."""

    @property
    def position(self) -> int:
        """Decoder position of the last written row (the next one fed)."""
        return self.rows.n_rows - 1


def max_rows(cfg: DiaConfig, options: DiaOptions, n_prefix: int, capacity: int) -> int:
    """Delayed rows the utterance may use (nari's ``max_tokens``), within the checkpoint's and the cache's
    limits; ``InvalidRequest`` when not even one frame fits."""
    rows = min(options.max_tokens or cfg.decoder.max_positions, cfg.decoder.max_positions, capacity)
    if options.max_frames is not None:
        rows = min(rows, n_prefix + options.max_frames + cfg.max_delay)
    if rows < n_prefix + cfg.max_delay + 1:
        raise InvalidRequest(
            f"max_tokens {rows} leaves no frame: the prefix takes {n_prefix} rows and the delay pattern "
            f"{cfg.max_delay} more",
            param="max_tokens",
        )
    return rows


def new_rows(
    cfg: DiaConfig, options: DiaOptions, capacity: int, prompt: torch.Tensor | None = None
) -> DelayedRows:
    """The delayed rows of a new utterance (BOS row, optional audio prompt [T_p, C])."""
    n_prefix = 1 + (0 if prompt is None else prompt.shape[0])
    limit = max_rows(cfg, options, n_prefix, capacity)
    return DelayedRows(cfg.delay_pattern, cfg.bos_id, cfg.eos_id, cfg.pad_id, limit, prompt)


def sample_streams(streams: list[DiaStream], eos: int) -> None:
    """Sample and write the next delayed row of every stream (their logits are consumed)."""
    logits = torch.stack([s.logits for s in streams])  # type: ignore[misc]
    picks = sample_rows(logits[:, 0], logits[:, 1], [s.options for s in streams], [s.generator for s in streams], eos)  # fmt: skip
    for stream, pick in zip(streams, picks, strict=True):
        if stream.trace is not None:
            stream.trace.append(stream.logits)  # type: ignore[arg-type]
        stream.rows.accept(pick)
        stream.logits = None


def advance_streams(runner: DiaRunner, streams: list[DiaStream]) -> None:
    """Feed every stream's newest row through one batched decoder step → its next logits."""
    rows = torch.stack([s.rows.last_row for s in streams])
    logits = runner.decode([s.slot for s in streams], [s.position for s in streams], rows, [s.text for s in streams])  # fmt: skip
    for stream, row_logits in zip(streams, logits, strict=True):
        stream.logits = row_logits


def prefill_stream(runner: DiaRunner, stream: DiaStream, start: int, n: int) -> None:
    """Rows start..start+n of the prefix into the stream's slot; the last chunk leaves its first logits."""
    logits = runner.prefill(stream.slot, stream.rows.rows[start : start + n], start, stream.text)
    if start + n == stream.rows.n_prefix:
        stream.logits = logits


@dataclass
class Generated:
    """One utterance of :func:`generate`."""

    codes: torch.Tensor
    """Undelayed DAC codes [frames, C] (0..1023)."""
    rows: DelayedRows
    logits: list[torch.Tensor] = field(default_factory=list)
    """Each step's [2, C, V] logits (conditional, unconditional) when traced."""


@torch.inference_mode()
def generate(
    model: Dia,
    texts: list[list[int]],
    options: DiaOptions,
    prompts: list[torch.Tensor | None] | None = None,
    trace: bool = False,
) -> list[Generated]:
    """Generate the utterances of ``texts`` (byte ids) together, as the reference loop does: all start at
    row 0, each stops after its EOS countdown, the batch shrinks as they finish."""
    cfg = model.cfg
    prompts = prompts or [None] * len(texts)
    capacity = cfg.decoder.max_positions
    rows = [new_rows(cfg, options, capacity, p) for p in prompts]
    runner = DiaRunner(model, len(texts), max(r.max_rows for r in rows))
    streams = [
        DiaStream(
            runner.encode(ids), r, options, new_generator(options.seed), slot=i, trace=[] if trace else None
        )
        for i, (ids, r) in enumerate(zip(texts, rows, strict=True))
    ]
    for stream in streams:
        prefill_stream(runner, stream, 0, stream.rows.n_prefix)
    active = streams
    while active:
        sample_streams(active, cfg.eos_id)
        active = [s for s in active if not s.rows.finished]
        if active:
            advance_streams(runner, active)
    return [Generated(s.rows.frames(0, s.rows.n_frames or 0), s.rows, s.trace or []) for s in streams]
