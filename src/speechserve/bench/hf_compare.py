"""speechserve against Hugging Face transformers on Voxtral Mini 3B's decoder: greedy decode time per token at
batch 1 and at concurrency N, on the same weights, interleaved, with the generated ids compared.

The checkpoint is a random Voxtral ASR one in the Hugging Face layout (``--preset wide``: the real widths —
dim 3072, 32/8 heads, FFN 8192, the 131 072-row LM head — with 4 decoder layers), which transformers'
``VoxtralForConditionalGeneration`` loads as it is and speechserve loads through ``speechserve.load``. Both run
the same prompts (random token ids, no audio: decoding cost does not depend on where the prompt came from) in
the same dtype and thread count; each system prefills, then decodes ``tokens`` greedy steps with its own KV
cache (transformers: its default dynamic cache, called the way ``generate`` calls the model, without
``generate``'s own per-step bookkeeping, so the comparison is of the model code). Only the decode steps are
timed. Rounds alternate which system runs first; every figure is the median over rounds.

Needs ``transformers`` ≥ 5 (its ``cache=`` argument; not a dependency of speechserve; install it in a separate environment).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

Decode = Callable[[torch.Tensor, int], tuple[torch.Tensor, list[float]]]
"""(prompt ids [B, L], tokens) → (generated ids [B, tokens], seconds of each decode step)."""


@dataclass(frozen=True)
class ComparePoint:
    """One batch size: medians over rounds, per system (the first system is the baseline of ``speedup``)."""

    batch: int
    ms_per_step: dict[str, float]
    tokens_per_s: dict[str, float]
    speedup: float
    """The second system's time per step / the first's (> 1: the first is faster)."""
    ids_equal: bool
    """Every round's greedy ids equal between the systems, for every sequence of the batch."""


def write_checkpoint(directory: str | Path, preset: str, seed: int = 0) -> Path:
    """A random Voxtral ASR checkpoint in the Hugging Face layout (the registry's writer)."""
    from speechserve import registry

    writer = registry.get("voxtral_asr").write_random
    if writer is None:
        raise RuntimeError("the voxtral_asr family cannot write random checkpoints")
    return Path(writer(directory, preset=preset, seed=seed, layout="hf"))


def speechserve_decoder(root: Path, dtype: torch.dtype, isq: str | None = None) -> Decode:
    """Greedy decode through speechserve's model (loaded by ``speechserve.load``: fast small-M matmuls on)."""
    import speechserve

    model = speechserve.load(root, device="cpu", dtype=dtype, isq=isq).model
    decoder = model.decoder

    @torch.inference_mode()
    def decode(ids: torch.Tensor, tokens: int) -> tuple[torch.Tensor, list[float]]:
        batch, length = ids.shape
        cache = decoder.new_cache(batch, length + tokens)
        hidden = decoder(decoder.tok_embeddings(ids), cache, 0)[:, -1]  # [B, dim]
        out, times = [model.logits(hidden).float().argmax(-1)], []
        for i in range(tokens - 1):
            start = time.perf_counter()
            hidden = decoder(decoder.tok_embeddings(out[-1][:, None]), cache, length + i)[:, 0]
            out.append(model.logits(hidden).float().argmax(-1))
            times.append(time.perf_counter() - start)
        return torch.stack(out, 1), times

    return decode


def transformers_decoder(root: Path, dtype: torch.dtype) -> Decode:
    """Greedy decode through transformers' VoxtralForConditionalGeneration on the same files."""
    from transformers import VoxtralForConditionalGeneration

    model = VoxtralForConditionalGeneration.from_pretrained(root, dtype=dtype).eval()

    @torch.inference_mode()
    def decode(ids: torch.Tensor, tokens: int) -> tuple[torch.Tensor, list[float]]:
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        past, nxt, times = out.cache, out.logits[:, -1].float().argmax(-1), []
        generated = [nxt]
        for _ in range(tokens - 1):
            start = time.perf_counter()
            out = model(input_ids=nxt[:, None], cache=past, use_cache=True, logits_to_keep=1)
            past, nxt = out.cache, out.logits[:, -1].float().argmax(-1)
            generated.append(nxt)
            times.append(time.perf_counter() - start)
        return torch.stack(generated, 1), times

    return decode


def compare(
    systems: dict[str, Decode], batches: list[int], tokens: int, prompt_len: int, rounds: int, vocab: int
) -> list[ComparePoint]:
    """Two decoders on the same prompts, per batch size, interleaved round by round (who goes first
    alternates)."""
    gen = torch.Generator().manual_seed(0)
    prompts = {b: torch.randint(1000, vocab, (b, prompt_len), generator=gen) for b in batches}
    times: dict[tuple[int, str], list[float]] = {}
    equal = dict.fromkeys(batches, True)
    order = list(systems.items())
    for r in range(rounds):
        for b in batches:
            results = [
                (name, decode(prompts[b], tokens)) for name, decode in (order if r % 2 == 0 else order[::-1])
            ]
            for name, (_, steps) in results:
                times.setdefault((b, name), []).append(statistics.median(steps))
            equal[b] &= bool(torch.equal(results[0][1][0], results[1][1][0]))
    points = []
    for b in batches:
        ms = {name: 1000 * statistics.median(times[b, name]) for name in systems}
        first, second = ms.values()
        points.append(ComparePoint(b, ms, {n: 1000 * b / t for n, t in ms.items()}, second / first, equal[b]))
    return points


def run(args: Any) -> list[ComparePoint]:
    """`speechserve bench hf-compare`: write (or take) the checkpoint, load both, compare."""
    from speechserve.loading import pick_dtype

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = pick_dtype(args.dtype, torch.device("cpu"))
    root = Path(args.model) if args.model else None
    if root is None:
        root = write_checkpoint(tempfile.mkdtemp(prefix="speechserve-hf-compare-"), args.preset)
    ours, theirs = speechserve_decoder(root, dtype), transformers_decoder(root, dtype)
    import json

    vocab = json.loads((root / "config.json").read_text(encoding="utf-8"))["text_config"]["vocab_size"]
    systems = {"speechserve": ours, "transformers": theirs}
    return compare(systems, args.concurrency, args.tokens, args.prompt_len, args.repeats, vocab)
