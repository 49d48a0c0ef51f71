"""Voxtral TTS's graphed hot path: the batched backbone decode step and the flow head with bucketed static
shapes, captured and replayed by the engine's :class:`~speechserve.engine.cuda_graphs.GraphRunner`.

Attention reads a static ``kv_len`` (the cache length) with a mask, so shapes never change.
"""

from __future__ import annotations

import torch

from speechserve.engine.cuda_graphs import DEFAULT_BUCKETS, GraphRunner, bucket_sizes
from speechserve.models.layers import CacheStep
from speechserve.models.voxtral_tts.runner import TTSModelRunner


class _Bucket:
    """Static buffers (and graphs) for one padded batch size."""

    def __init__(self, runner: TTSModelRunner, size: int) -> None:
        dev, dt, dim = runner.device, runner.dtype, runner.model.cfg.backbone.dim
        n_ac = runner.model.cfg.codes.n_acoustic_codebook
        self.size = size
        self.slots = torch.full((size,), runner.scratch_slot, dtype=torch.long, device=dev)
        self.positions = torch.zeros(size, dtype=torch.long, device=dev)
        self.embeds = torch.zeros(size, dim, dtype=dt, device=dev)
        self.hidden_in = torch.zeros(size, dim, dtype=dt, device=dev)
        self.noise = torch.zeros(size, n_ac, dtype=torch.float32, device=dev)
        self.alpha = torch.ones(size, dtype=torch.float32, device=dev)
        self.hidden_out: torch.Tensor | None = None
        self.codes_out: torch.Tensor | None = None


class GraphedRunner:
    """Drop-in for :class:`TTSModelRunner`'s ``decode`` and ``frame_head`` with bucketed static shapes."""

    def __init__(
        self, runner: TTSModelRunner, use_graphs: bool, buckets: tuple[int, ...] = DEFAULT_BUCKETS
    ) -> None:
        self.runner = runner
        self.graphs = GraphRunner(use_graphs, runner.device)
        self.use_graphs = self.graphs.use_graphs
        self.buckets = bucket_sizes(runner.n_slots, buckets)
        self._state: dict[int, _Bucket] = {}

    def _bucket(self, n: int) -> _Bucket:
        size = next(b for b in self.buckets if b >= n)
        if size not in self._state:
            self._state[size] = _Bucket(self.runner, size)
        return self._state[size]

    # ---- the two graphed calls ------------------------------------------------------------------------------
    def _decode_static(self, b: _Bucket) -> None:
        step = CacheStep.build(b.slots, b.positions[:, None], kv_len=self.runner.max_len)
        b.hidden_out = self.runner.model.backbone(b.embeds[:, None], self.runner.cache, step)[:, 0]

    def _head_static(self, b: _Bucket, n_steps: int) -> None:
        b.codes_out, _ = self.runner.model.acoustic_transformer(b.hidden_in, b.noise, b.alpha, n_steps)

    @torch.inference_mode()
    def decode(self, slots: list[int], positions: list[int], embeds: torch.Tensor) -> torch.Tensor:
        n = len(slots)
        b = self._bucket(n)
        b.slots[:n].copy_(torch.tensor(slots))
        b.slots[n:].fill_(self.runner.scratch_slot)
        b.positions[:n].copy_(torch.tensor(positions))
        b.positions[n:].zero_()
        b.embeds[:n].copy_(embeds)
        self.graphs.run(b, "decode", lambda: self._decode_static(b))
        return b.hidden_out[:n].clone()  # type: ignore[index]

    @torch.inference_mode()
    def frame_head(
        self, hidden: torch.Tensor, noise: torch.Tensor, cfg_alpha: torch.Tensor, n_steps: int
    ) -> torch.Tensor:
        n = hidden.shape[0]
        b = self._bucket(n)
        b.hidden_in[:n].copy_(hidden)
        b.hidden_in[n:].zero_()
        b.noise[:n].copy_(noise)
        b.alpha[:n].copy_(cfg_alpha)
        self.graphs.run(b, f"head{n_steps}", lambda: self._head_static(b, n_steps))
        return b.codes_out[:n].clone()  # type: ignore[index]
