"""The codec as its own stage: decode the due chunks of many requests in one batched call.

Each chunk is decoded with up to ``context_frames`` earlier frames of its own request as left context,
whose samples are then dropped, so streamed audio equals one-shot decoding (the codec is causal with a
~21-frame receptive field). Windows of different lengths are right-padded: causality makes padding inert.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechserve.models.voxtral_tts.codec import VoxtralCodec

PAD_CODE = 2  # any valid code; right padding never influences earlier outputs


@dataclass(frozen=True)
class ChunkJob:
    """Decode ``window`` [W, 37] and keep the samples of its last ``n_new`` frames."""

    window: torch.Tensor
    n_new: int


class CodecStage:
    def __init__(self, codec: VoxtralCodec, context_frames: int, device: torch.device) -> None:
        self.codec, self.context_frames, self.device = codec, context_frames, device
        self.samples_per_frame = codec.cfg.samples_per_frame

    def window(self, frames: list[torch.Tensor], n_new: int) -> ChunkJob:
        """The job for the newest ``n_new`` of ``frames`` with its left context."""
        w = min(len(frames), self.context_frames + n_new)
        return ChunkJob(torch.stack(frames[-w:]), n_new)

    @torch.inference_mode()
    def decode(self, jobs: list[ChunkJob]) -> list[torch.Tensor]:
        """PCM [1920·n_new] (float32, CPU) for every job, from one batched decode."""
        if not jobs:
            return []
        longest = max(j.window.shape[0] for j in jobs)
        batch = torch.full((len(jobs), longest, jobs[0].window.shape[1]), PAD_CODE, dtype=torch.long)
        for i, job in enumerate(jobs):
            batch[i, : job.window.shape[0]] = job.window
        pcm = self.codec.decode(batch.to(self.device)).float().cpu()
        spf = self.samples_per_frame
        out = []
        for i, job in enumerate(jobs):
            w = job.window.shape[0]
            out.append(pcm[i, (w - job.n_new) * spf : w * spf])
        return out
