"""One audio stream's host-side bookkeeping: its samples, how far encoding and decoding got, its last id.

A stream takes samples in pieces of any size (:class:`MelFramer`) and produces one id per decoder position:
its first output needs the whole prompt (``<s>`` + pads: 39 positions at 480 ms delay, i.e. 562.5 ms of
audio after the left padding), every later one a single new 80 ms token of audio. Its device state lives in
one slot of a :class:`~speechserve.models.voxtral_realtime.runner.StreamRunner`, which steps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from speechserve.models.voxtral_realtime.frontend import MelFramer
from speechserve.models.voxtral_realtime.model import VoxtralRealtime
from speechserve.models.voxtral_realtime.tokenizer import StreamPrompt


@dataclass(eq=False)
class StreamState:
    """Where one stream stands. Owned by one thread (the session's caller, or the engine thread)."""

    prompt: StreamPrompt
    framer: MelFramer
    ada: torch.Tensor
    """[n_layers, dim]: the delay's FFN-input factors."""
    slot: int = 0
    n_encoded: int = 0
    """Tokens of audio turned into embeddings."""
    n_fed: int = 0
    """Decoder positions fed (the prompt counts as its length)."""
    pending: list[torch.Tensor] = field(default_factory=list)
    """Audio embeddings [dim] encoded but not fed yet, in order."""
    last_id: int | None = None
    ended: bool = False
    """No more audio will come (the closing silence has been pushed)."""
    samples_per_token: int = 1280

    @property
    def prompt_len(self) -> int:
        return len(self.prompt.ids)

    @property
    def tokens_needed(self) -> int:
        """Audio tokens the next output consumes: the whole prompt first, then one."""
        return self.prompt_len if self.n_fed == 0 else 1

    @property
    def ready(self) -> bool:
        """Enough audio has arrived for the next output."""
        return len(self.pending) + self.framer.ready_tokens >= self.tokens_needed

    @property
    def exhausted(self) -> bool:
        """The stream has ended and its audio gives no further output."""
        return self.ended and not self.ready

    def push(self, samples: np.ndarray) -> None:
        if self.ended:
            raise RuntimeError("audio pushed after the end of the stream")
        self.framer.push(samples)

    def end(self, pad: bool = True) -> None:
        """No more audio. ``pad``: append the closing silence as mistral_common pads a whole file (complete the
        last 80 ms token, then ``delay + 11`` tokens), so a stream decodes exactly like the same file offline."""
        if self.ended:
            return
        if pad:
            align = -self.framer.n_samples % self.samples_per_token
            self.framer.push(np.zeros(align + self.prompt.right_pad_samples, np.float32))
        self.ended = True


def new_stream(model: VoxtralRealtime, prompt: StreamPrompt, ada: torch.Tensor, slot: int = 0) -> StreamState:
    """A fresh stream for ``prompt`` (its delay) in ``slot`` (the caller resets the slot's cache)."""
    cfg = model.cfg
    framer = MelFramer(cfg.encoder.audio, prompt.left_pad_samples, cfg.mel_frames_per_token)
    return StreamState(prompt, framer, ada, slot, samples_per_token=cfg.samples_per_token)
