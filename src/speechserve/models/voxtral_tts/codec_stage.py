"""The codec as its own stage: decode the due chunks of many streams in one batched call per chunk size.

Decoding is incremental with carried causal state (``models/voxtral_tts/codec_state.py``): each frame is
decoded exactly once and the joined stream equals one-shot decoding — no left context is re-decoded.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from speechserve.models.voxtral_tts.codec import VoxtralCodec
from speechserve.models.voxtral_tts.codec_state import CodecStreamState, StreamingCodecDecoder


class CodecStage:
    def __init__(self, codec: VoxtralCodec, device: torch.device) -> None:
        self.decoder = StreamingCodecDecoder(codec)
        self.device = device

    def new_state(self) -> CodecStreamState:
        """The state of a stream that has not produced audio yet."""
        return self.decoder.initial_state(1)

    @torch.inference_mode()
    def decode(
        self, jobs: list[tuple[CodecStreamState, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, CodecStreamState]]:
        """For each (state, new frames [n, 37]): PCM [1920·n] (float32, CPU) and the advanced state.

        Streams with the same chunk length share one batched decoder call.
        """
        groups: dict[int, list[int]] = defaultdict(list)
        for i, (_, frames) in enumerate(jobs):
            groups[frames.shape[0]].append(i)
        out: list[tuple[torch.Tensor, CodecStreamState] | None] = [None] * len(jobs)
        for idx in groups.values():
            state = CodecStreamState.stack([jobs[i][0] for i in idx])
            codes = torch.stack([jobs[i][1] for i in idx]).to(self.device)
            pcm, state = self.decoder.decode(codes, state)
            pcm = pcm.float().cpu()
            for row, (i, s) in enumerate(zip(idx, state.split(), strict=True)):
                out[i] = (pcm[row], s)
        return out  # type: ignore[return-value]
