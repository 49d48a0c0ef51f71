"""The batched 80 ms step of Voxtral Realtime: one output position for each of many streams, on their own
slots at their own positions. Tensors in, tensors out; owns the slotted :class:`StreamCache`.

Per step: the new audio of every stream is encoded (streams needing the same number of tokens in one call:
the prompt's 39 at the start, one afterwards), then every stream feeds its fused input — the whole prompt
at the start, one position afterwards — through the decoder (streams with the same count in one call),
and the last hidden of each gives its logits.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from speechserve.models.voxtral_realtime.model import VoxtralRealtime
from speechserve.models.voxtral_realtime.stream import StreamState, new_stream
from speechserve.models.voxtral_realtime.tokenizer import StreamPrompt


class StreamRunner:
    """Lifetime: its owner's (a session: one slot; the engine program: one per concurrent stream)."""

    def __init__(self, model: VoxtralRealtime, n_slots: int) -> None:
        self.model = model
        self.cache = model.new_cache(n_slots)
        self._ada: dict[int, torch.Tensor] = {}

    @torch.inference_mode()
    def ada_scales(self, n_delay: int) -> torch.Tensor:
        """[n_layers, dim] FFN-input factors of a delay (computed once per delay)."""
        if n_delay not in self._ada:
            self._ada[n_delay] = self.model.decoder.ada_scales(n_delay)
        return self._ada[n_delay]

    def open(self, prompt: StreamPrompt, slot: int = 0) -> StreamState:
        """A new stream in ``slot`` (whatever the slot held before is forgotten)."""
        self.cache.reset(slot)
        return new_stream(self.model, prompt, self.ada_scales(prompt.n_delay), slot)

    @torch.inference_mode()
    def decode_streams(self, streams: list[StreamState]) -> torch.Tensor:
        """One output for each ready stream (in order) → float32 logits [B, vocab]. The caller records the
        chosen ids in ``stream.last_id``."""
        self.encode(streams)
        return self.model.logits(self.decode(streams)).float()

    def encode(self, streams: list[StreamState]) -> None:
        """Turn the audio each stream's next output needs into embeddings (appended to ``pending``)."""
        groups: dict[int, list[StreamState]] = defaultdict(list)
        for s in streams:
            if (k := s.tokens_needed - len(s.pending)) > 0:
                groups[k].append(s)
        device = self.model.device
        for k, group in groups.items():
            mel = torch.stack([s.framer.take(k, device) for s in group])  # [B, n_mels, 8k]
            emb = self.model.encode(mel, self.cache, [s.slot for s in group], [s.n_encoded for s in group])
            for s, e in zip(group, emb, strict=True):
                s.pending.extend(e.unbind(0))
                s.n_encoded += k

    def decode(self, streams: list[StreamState]) -> torch.Tensor:
        """Feed each stream's next fused input(s) → the last normed hidden of each [B, dim]."""
        groups: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(streams):
            groups[s.tokens_needed].append(i)
        device = self.model.device
        out: list[torch.Tensor | None] = [None] * len(streams)
        for n, members in groups.items():
            group = [streams[i] for i in members]
            audio = torch.stack([torch.stack(s.pending[:n]) for s in group])  # [B, n, dim]
            ids = torch.tensor(
                [list(s.prompt.ids) if s.n_fed == 0 else [s.last_id] for s in group], device=device
            )
            ada = torch.stack([s.ada for s in group])
            hidden = self.model.decode(
                self.model.embed(audio, ids),
                self.cache,
                [s.slot for s in group],
                [s.n_fed for s in group],
                ada,
            )
            for i, s, h in zip(members, group, hidden[:, -1], strict=True):
                del s.pending[:n]
                s.n_fed += n
                out[i] = h
        return torch.stack(out)  # type: ignore[arg-type]
