"""Autoregressive decoding of one Voxtral ASR prompt with a static KV cache, greedy or sampled.

Greedy (temperature 0) takes the argmax, as the reference; otherwise softmax(logits / T) restricted to the
top-p nucleus, drawn with the request's own `torch.Generator`, so one request's text never depends on others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from speechserve.models.sampling import Sampler
from speechserve.models.voxtral_asr import VoxtralASR


@dataclass(frozen=True)
class TokenStep:
    """One generated id and the distribution it came from."""

    id: int
    logprob: float
    """log-softmax of the raw logits at ``id``."""
    logits: torch.Tensor
    """[vocab] float32 logits of this step (before temperature)."""


@torch.inference_mode()
def generate_tokens(
    model: VoxtralASR,
    prompt_embeds: torch.Tensor,
    max_new_tokens: int,
    sampler: Sampler,
    stop_ids: frozenset[int] = frozenset(),
) -> Iterator[TokenStep]:
    """prompt_embeds [L, dim] → generated steps, lazily; stops after a stop id (yielded) or the cap."""
    decoder = model.decoder
    n_prompt = prompt_embeds.shape[0]
    cache = decoder.new_cache(1, n_prompt + max_new_tokens)
    hidden = decoder(prompt_embeds[None], cache, 0)[0, -1]  # [dim]
    for i in range(max_new_tokens):
        logits = model.logits(hidden).float()  # [vocab]
        token = sampler(logits)
        logprob = float(torch.log_softmax(logits, dim=-1)[token])
        yield TokenStep(token, logprob, logits)
        if token in stop_ids or i + 1 == max_new_tokens:
            return
        embed = decoder.tok_embeddings(torch.tensor([[token]], device=hidden.device))  # [1, 1, dim]
        hidden = decoder(embed, cache, n_prompt + i)[0, -1]
