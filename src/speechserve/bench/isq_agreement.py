"""ISQ int8 against fp32 on one checkpoint, as whole-model figures: frame time, weight memory and semantic-code
agreement for a speech (TTS) model; decode time per token and greedy ids for a transcription model.

Run with ``python -m speechserve.bench.isq_agreement tts|asr CHECKPOINT [options]``; prints one JSON object.

- ``tts``: both models loaded (fp32 and ``isq=--isq``, int8 by default). Frame time: the reference frame loop
  (``pipeline.frames``, one request), ``--frames`` frames per run, ``--rounds`` rounds alternating which model
  runs first; medians. Agreement is teacher-forced: the int8 model generates ``--agree-frames`` frames, then
  both models' backbones are fed that same code sequence one frame at a time (as in decoding) and the
  semantic code each would choose (the masked argmax of the semantic head) is compared frame by frame, so one
  early flip does not decide every later frame. The fp32 top-1/top-2 gap at each disagreement is reported.
- ``asr``: greedy decode per step, fp32 against int8, at each ``--concurrency``, interleaved
  (:func:`speechserve.bench.hf_compare.compare`), ids compared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

TEXT = "The old lighthouse keeper climbed the spiral stairs every evening, counting each of the steps."


def frame_seconds(pipe: Any, frames: int) -> float:
    """Seconds per frame of one request through the reference frame loop (END ignored)."""
    from speechserve.options import SynthesisOptions

    opts = SynthesisOptions(seed=0, max_frames=frames, ignore_end=True)
    start = time.perf_counter()
    n = sum(1 for _ in pipe.frames(TEXT, None, opts))
    return (time.perf_counter() - start) / n


@torch.inference_mode()
def teacher_forced_semantic(pipe: Any, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """codes [N, n_codebooks] → the semantic code the model picks at each frame given codes[:i] (decoded one
    frame at a time, as generation does) and the top-1/top-2 logit gap there."""
    model = pipe.model
    backbone, flow = model.backbone, model.acoustic_transformer
    _, embeds = pipe.prompt(TEXT, None)
    n_prompt = embeds.shape[0]
    cache = backbone.new_cache(1, n_prompt + len(codes))
    hidden = backbone(embeds[None], cache, 0)[:, -1]
    picks, gaps = [], []
    for i in range(len(codes)):
        top = flow.semantic_logits(hidden)[0].topk(2)
        picks.append(int(top.indices[0]))
        gaps.append(float(top.values[0] - top.values[1]))
        if i + 1 < len(codes):
            hidden = backbone(model.audio_embeddings(codes[i][None])[:, None], cache, n_prompt + i)[:, -1]
    return torch.tensor(picks), torch.tensor(gaps)


def quantized_layer_bytes(fp32: torch.nn.Module, int8: torch.nn.Module) -> dict[str, int]:
    """Bytes of the layers ISQ quantized, in each model (the part of the weights ISQ changes)."""
    from speechserve.models.quantize import is_int8, weight_bytes

    names = [n for n, m in int8.named_modules() if is_int8(m)]
    return {
        "fp32": sum(weight_bytes(fp32.get_submodule(n)) for n in names),
        "int8": sum(weight_bytes(int8.get_submodule(n)) for n in names),
    }


def tts(root: Path, frames: int, rounds: int, agree_frames: int, mode: str = "int8") -> dict[str, Any]:
    import speechserve
    from speechserve.models.quantize import weight_bytes
    from speechserve.options import SynthesisOptions

    int8 = speechserve.load(root, device="cpu", isq=mode)  # first: the peak is one fp32 transient
    pipes = {"fp32": speechserve.load(root, device="cpu"), "int8": int8}
    times: dict[str, list[float]] = {name: [] for name in pipes}
    for r in range(rounds):
        for name in list(pipes) if r % 2 == 0 else list(pipes)[::-1]:
            times[name].append(frame_seconds(pipes[name], frames))
    opts = SynthesisOptions(seed=0, max_frames=agree_frames, ignore_end=True)
    codes = torch.stack([f.codes for f in pipes["int8"].frames(TEXT, None, opts)])
    fp_pick, fp_gap = teacher_forced_semantic(pipes["fp32"], codes)
    q_pick, _ = teacher_forced_semantic(pipes["int8"], codes)
    differ = (fp_pick != q_pick).nonzero().flatten().tolist()
    ms = {n: 1000 * statistics.median(t) for n, t in times.items()}
    return {
        "ms_per_frame": ms, "rounds": {n: [round(1000 * x, 1) for x in t] for n, t in times.items()},
        "frame_time_ratio": ms["fp32"] / ms["int8"],
        "weight_bytes": {n: weight_bytes(p.model) for n, p in pipes.items()},
        "quantized_layer_bytes": quantized_layer_bytes(pipes["fp32"].model, pipes["int8"].model),
        "semantic_frames": len(codes), "semantic_equal": len(codes) - len(differ),
        "semantic_equal_fraction": 1 - len(differ) / len(codes),
        "self_consistent": bool(torch.equal(q_pick, codes[:, 0])),
        "fp32_gap_at_disagreements": [round(float(fp_gap[i]), 4) for i in differ],
        "fp32_gap_median": float(fp_gap.median()),
    }  # fmt: skip


def asr(
    root: Path, batches: list[int], tokens: int, prompt_len: int, rounds: int, mode: str = "int8"
) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from speechserve.bench.hf_compare import compare, speechserve_decoder

    systems = {
        n: speechserve_decoder(root, torch.float32, isq) for n, isq in (("fp32", None), ("int8", mode))
    }
    config = root / "config.json"
    params = json.loads((config if config.is_file() else root / "params.json").read_text(encoding="utf-8"))
    vocab = params.get("text_config", params).get("vocab_size")
    return [asdict(p) for p in compare(systems, batches, tokens, prompt_len, rounds, vocab)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m speechserve.bench.isq_agreement", description=__doc__)
    parser.add_argument("kind", choices=("tts", "asr"))
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--frames", type=int, default=4, help="tts: frames per timed run")
    parser.add_argument("--agree-frames", type=int, default=200, help="tts: frames of the agreement run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8", help="asr: batch sizes")
    parser.add_argument("--tokens", type=int, default=16, help="asr: greedy tokens per sequence")
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--threads", type=int)
    parser.add_argument(
        "--isq", default="int8", choices=("int8", "int8-dynamic"), help="the mode set against fp32"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.kind == "tts":
        out: Any = tts(args.checkpoint, args.frames, args.rounds, args.agree_frames, args.isq)
    else:
        batches = [int(b) for b in args.concurrency.split(",")]
        out = asr(args.checkpoint, batches, args.tokens, args.prompt_len, args.rounds, args.isq)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
