"""Streaming DAC decoding in windows: the joined stream equals one-shot decoding.

The DAC decoder is not causal, so a frame's samples depend on ``context`` code frames on each side (its
receptive field, ~11 frames for the 44.1 kHz model, computed from the layer shapes). A chunk of frames
start..end is decoded from frames start−context..end+context (clipped to the utterance) and cropped, so every
sample sees exactly the codes it sees in one-shot decoding; only the utterance's own ends are zero-padded, as
in one-shot decoding. A frame is therefore *decodable* once ``context`` later frames are complete, or the
utterance has ended. Windows of the same length from different streams share one batched decoder call.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from speechserve.models.dia.dac import DAC
from speechserve.models.dia.delay import DelayedRows


class DacWindowDecoder:
    """Decodes chunks of many utterances' frames. Lifetime: its program's (stateless between calls)."""

    def __init__(self, dac: DAC) -> None:
        self.dac = dac
        self.context = dac.decoder.context_frames()
        self.hop = dac.cfg.hop_length
        self.n_codes = dac.cfg.codebook_size

    def decodable(self, rows: DelayedRows) -> int:
        """Frames of ``rows`` whose samples no longer depend on frames still to come."""
        complete = rows.n_complete
        if rows.n_frames is not None and complete == rows.n_frames:
            return complete
        return max(0, complete - self.context)

    @torch.inference_mode()
    def decode(self, jobs: list[tuple[DelayedRows, int, int]]) -> list[np.ndarray]:
        """For each (rows, start, end): float32 PCM of frames start..end [(end − start)·hop]."""
        windows = []
        for rows, start, end in jobs:
            available = rows.n_complete
            left, right = max(0, start - self.context), min(available, end + self.context)
            windows.append((rows.frames(left, right), (start - left) * self.hop, (end - left) * self.hop))
        groups: dict[int, list[int]] = defaultdict(list)
        for i, (codes, _, _) in enumerate(windows):
            groups[codes.shape[0]].append(i)
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(jobs)
        for idx in groups.values():
            codes = torch.stack([windows[i][0] for i in idx]).to(self.dac.device)
            codes = torch.where(codes < self.n_codes, codes, 0)  # as nari: a non-code id decodes as code 0
            pcm = self.dac.decode(codes.transpose(1, 2)).float().cpu()
            for row, i in enumerate(idx):
                _, a, b = windows[i]
                out[i] = pcm[row, a:b].numpy()
        return out

    @torch.inference_mode()
    def decode_all(self, codes: torch.Tensor) -> np.ndarray:
        """One-shot decoding of an utterance's codes [T, C] → PCM [T·hop]."""
        if codes.shape[0] == 0:
            return np.zeros(0, np.float32)
        return self.dac.decode(codes.t()[None].to(self.dac.device))[0].float().cpu().numpy()
