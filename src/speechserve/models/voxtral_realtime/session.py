"""One stream decoded on the caller's thread: push audio, take ids as 80 ms steps become possible.

The SDK's building block (``pipeline.stream()``, ``pipeline.transcribe()`` and the golden runner all use it);
the engine program runs the same :class:`StreamRunner` step for many streams at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from speechserve.models.sampling import Sampler
from speechserve.models.voxtral_realtime.model import VoxtralRealtime
from speechserve.models.voxtral_realtime.runner import StreamRunner
from speechserve.models.voxtral_realtime.tokenizer import StreamPrompt


@dataclass(frozen=True)
class Step:
    """One generated id and the logits it came from."""

    id: int
    logprob: float
    logits: torch.Tensor
    """[vocab] float32."""


class StreamSession:
    """One stream with its own one-slot state. Lifetime: one stream (its state is bounded by the windows).

    ``push`` audio in any piece sizes, ``end`` when it stops; iterate :meth:`steps` for the ids that the
    audio received so far allows (one per 80 ms). Stops for good at ``stop_ids`` or ``max_positions``.
    """

    def __init__(
        self,
        model: VoxtralRealtime,
        prompt: StreamPrompt,
        sampler: Sampler | None = None,
        stop_ids: frozenset[int] = frozenset(),
        max_positions: int | None = None,
    ) -> None:
        self.runner = StreamRunner(model, 1)
        self.state = self.runner.open(prompt, 0)
        self.sampler = sampler or Sampler()
        self.stop_ids = stop_ids
        self.max_positions = max_positions or model.cfg.decoder.max_seq_len
        self.ids: list[int] = []
        self.finish_reason: str | None = None
        """None while running; "stop" (a stop id, or the ended audio is used up) or "length"."""

    def push(self, samples: np.ndarray) -> None:
        """Append 16 kHz mono float32 samples."""
        self.state.push(samples)

    def end(self, pad: bool = True) -> None:
        """No more audio (``pad``: close with mistral_common's offline silence; see ``StreamState.end``)."""
        self.state.end(pad)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def next_step(self) -> Step | None:
        """The next id if the audio allows it now (None: wait for audio, or the stream is done)."""
        if self.done:
            return None
        if self.state.exhausted:
            self.finish_reason = "stop"
            return None
        if not self.state.ready:
            return None
        if self.state.n_fed + self.state.tokens_needed > self.max_positions:
            self.finish_reason = "length"
            return None
        logits = self.runner.decode_streams([self.state])[0]
        token = self.sampler(logits)
        self.state.last_id = token
        self.ids.append(token)
        if token in self.stop_ids:
            self.finish_reason = "stop"
        return Step(token, float(torch.log_softmax(logits, dim=-1)[token]), logits)

    def steps(self) -> Iterator[Step]:
        """Every id the audio received so far allows (lazily)."""
        while (step := self.next_step()) is not None:
            yield step
