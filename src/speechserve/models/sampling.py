"""Picking the next id from logits: greedy (the references' choice) or temperature + top-p with the
request's own seeded generator, so one request's ids never depend on who else is in the batch. Shared by
every family that samples ids."""

from __future__ import annotations

import torch


class Sampler:
    """Picks the next id from logits; owns the request's random generator (CPU, seeded)."""

    def __init__(self, temperature: float = 0.0, top_p: float = 1.0, seed: int | None = None) -> None:
        self.temperature, self.top_p = temperature, top_p
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, ()).item()))

    def __call__(self, logits: torch.Tensor) -> int:
        """logits [vocab] → id."""
        if self.temperature == 0.0:
            return int(logits.argmax())
        probs = torch.softmax(logits.float().cpu() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            outside = (
                sorted_probs.cumsum(-1) - sorted_probs >= self.top_p
            )  # mass before this id already enough
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=self.generator))
