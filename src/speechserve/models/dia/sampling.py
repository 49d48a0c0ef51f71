"""Dia's next-row sampler (spec §7, 0626 semantics), in the reference's exact order:

1. guided logits G = L_c + s·(L_c − L_u);
2. CFG filter: the top-k ids of G are the candidates, with the *conditional* logits as their values;
3. channel 0 may emit codes or EOS, channels 1..8 codes only;
4. temperature 0 → argmax; else divide by the temperature;
5. EOS rule: if EOS is the top id only EOS stays, else EOS is removed;
6. top-k again (as nari), then nucleus top-p (the first id always kept);
7. softmax → one multinomial draw per channel from the utterance's own generator.
"""

from __future__ import annotations

import torch

from speechserve.models.dia.options import DiaOptions


def cfg_filter(
    cond: torch.Tensor, uncond: torch.Tensor, cfg_scale: float, top_k: int, eos: int
) -> torch.Tensor:
    """Steps 1–3: cond/uncond [B, C, V] → candidate logits [B, C, V] (−inf outside the candidates)."""
    guided = cond + cfg_scale * (cond - uncond)
    keep = guided.topk(min(top_k, guided.shape[-1]), dim=-1).indices
    out = torch.full_like(cond, float("-inf")).scatter(-1, keep, cond.gather(-1, keep))
    out[:, 0, eos + 1 :] = float("-inf")
    out[:, 1:, eos:] = float("-inf")
    return out


def _restrict(logits: torch.Tensor, temperature: float, top_p: float, top_k: int, eos: int) -> torch.Tensor:
    """Steps 4–6 on candidate logits [N, V] → the logits sampled from."""
    x = logits / temperature
    eos_top = x.argmax(-1) == eos
    x[~eos_top, eos] = float("-inf")
    x[eos_top, :eos] = float("-inf")
    keep = x.topk(min(top_k, x.shape[-1]), dim=-1).indices
    x = torch.full_like(x, float("-inf")).scatter(-1, keep, x.gather(-1, keep))
    if top_p < 1.0:
        probs, order = x.softmax(-1).sort(-1, descending=True)
        drop = probs.cumsum(-1) > top_p
        drop = drop.roll(1, dims=-1)
        drop[:, 0] = False
        x = x.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return x


def sample_rows(
    cond: torch.Tensor,
    uncond: torch.Tensor,
    options: list[DiaOptions],
    generators: list[torch.Generator],
    eos: int,
) -> torch.Tensor:
    """Next ids [B, C] (CPU int64) for B utterances from their logits [B, C, V]; utterances with equal
    sampling settings share one batched call, the draw uses each utterance's own CPU generator."""
    picks = torch.empty(cond.shape[:2], dtype=torch.long)
    groups: dict[tuple, list[int]] = {}
    for i, opts in enumerate(options):
        groups.setdefault(opts.sampling_key, []).append(i)
    for (cfg_scale, temperature, top_p, top_k), idx in groups.items():
        rows = torch.tensor(idx, device=cond.device)
        cand = cfg_filter(cond[rows].float(), uncond[rows].float(), cfg_scale, top_k, eos)
        if temperature == 0.0:
            picks[idx] = cand.argmax(-1).cpu()
            continue
        logits = _restrict(cand.flatten(0, 1), temperature, top_p, top_k, eos)
        probs = logits.softmax(-1).view(len(idx), cand.shape[1], -1).cpu()
        for j, i in enumerate(idx):
            picks[i] = torch.multinomial(probs[j], 1, generator=generators[i])[:, 0]
    return picks


def new_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (a random seed when None)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, ()).item()))
    return gen
