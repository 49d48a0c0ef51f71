"""Streamed codec decoding: frames in, PCM chunks out, equal to one-shot decoding.

The codec is causal with a receptive field of ~21 frames, so each chunk is decoded together with up to
``context_frames`` previous frames and the context's samples are dropped (spec §6.4, §7.3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from speechserve.models.voxtral_tts.codec import VoxtralCodec

# (frames buffered so far, frames not yet decoded) → emit now?
ChunkPolicy = Callable[[int, int], bool]


def vllm_omni_chunks(at_begin: int = 5, chunk: int = 25, begin_until: int = 25) -> ChunkPolicy:
    """vllm-omni's async-chunk rule: every 5 frames while ≤ 25 are buffered, then every 25."""

    def policy(buffered: int, pending: int) -> bool:
        del pending
        size = at_begin if buffered <= begin_until else chunk
        return buffered % size == 0

    return policy


class CodecStreamer:
    """Buffers one request's frames and decodes them chunk by chunk. Lifetime: one request."""

    def __init__(self, codec: VoxtralCodec, policy: ChunkPolicy, context_frames: int) -> None:
        self.codec, self.policy, self.context_frames = codec, policy, context_frames
        self.frames: list[torch.Tensor] = []
        self.emitted = 0

    @property
    def pending(self) -> int:
        return len(self.frames) - self.emitted

    def push(self, codes: torch.Tensor) -> torch.Tensor | None:
        """Add one non-END frame [37]; returns PCM [1920·new] when the policy says a chunk is due."""
        self.frames.append(codes)
        return self.flush() if self.policy(len(self.frames), self.pending) else None

    def flush(self) -> torch.Tensor | None:
        """Decode every pending frame now (end of stream); None if nothing is pending."""
        new = self.pending
        if new == 0:
            return None
        window = min(len(self.frames), self.context_frames + new)
        codes = torch.stack(self.frames[-window:])[None]
        pcm = self.codec.decode(codes)[0]
        self.emitted = len(self.frames)
        return pcm[(window - new) * (pcm.shape[0] // window) :]
