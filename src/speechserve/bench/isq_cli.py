"""`speechserve dev quantize` (save a pre-quantized checkpoint) and `speechserve bench hf-compare`
(speechserve against transformers on Voxtral Mini 3B's decoder). Registered by :mod:`speechserve.bench.cli`;
torch and the model code load when a command runs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from speechserve.bench.cli import _ints
from speechserve.cli import UsageError


def cmd_quantize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from speechserve.checkpoints.quantized import save
    from speechserve.errors import InvalidRequest

    if not Path(args.source).is_dir():
        raise UsageError(f"{args.source} is not a checkpoint directory")
    try:
        counts = save(args.source, args.destination, args.isq)
    except InvalidRequest as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.destination}: {args.isq} weights of {counts['in_place'] + counts['sidecar']} Linear layers "
          f"({counts['in_place']} in the weights file, {counts['sidecar']} in the sidecar); "
          f"load it with speechserve.load({args.destination!r})")  # fmt: skip
    return 0


def cmd_hf_compare(args: argparse.Namespace) -> int:
    from speechserve.bench.hf_compare import run

    try:
        import transformers  # noqa: F401
    except ImportError:
        raise UsageError(
            "bench hf-compare needs transformers (pip install transformers, in its own venv)"
        ) from None
    points = run(args)
    if args.json:
        for p in points:
            print(json.dumps({"preset": args.preset, "dtype": args.dtype or "float32", **asdict(p)}))
        return 0
    print(f"# greedy decode, {args.tokens} tokens after a {args.prompt_len}-token prompt, medians of {args.repeats} "
          f"interleaved rounds ({args.model or 'random ' + args.preset + ' voxtral_asr, HF layout'})")  # fmt: skip
    print("| batch | speechserve ms/step | transformers ms/step | speedup | speechserve tok/s | transformers tok/s | ids equal |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for p in points:
        ms, tps = p.ms_per_step, p.tokens_per_s
        print(f"| {p.batch} | {ms['speechserve']:.1f} | {ms['transformers']:.1f} | {p.speedup:.2f}x | "
              f"{tps['speechserve']:.1f} | {tps['transformers']:.1f} | {p.ids_equal} |")  # fmt: skip
    return 0 if all(p.ids_equal for p in points) else 1


def register(bench: argparse._SubParsersAction, dev: argparse._SubParsersAction) -> None:
    """Add `bench hf-compare` to ``bench`` and `dev quantize` to ``dev``."""
    q = dev.add_parser(
        "quantize",
        help="save a checkpoint with its weights quantized (loads back with speechserve.load, no requantizing)",
    )
    q.add_argument("source", help="a float checkpoint directory")
    q.add_argument("destination", help="a new (or empty) directory")
    q.add_argument(
        "--isq", default="int8", choices=("int8", "int8-dynamic"), help="checkpoints.quantized.SAVED_MODES"
    )
    q.set_defaults(func=cmd_quantize)
    hf = bench.add_parser("hf-compare", help="greedy decode per token vs transformers (Voxtral Mini 3B)")
    hf.add_argument(
        "--model", help="a Voxtral ASR checkpoint in the HF layout (default: a random --preset one)"
    )
    hf.add_argument("--preset", default="wide", help="random checkpoint size (tiny, small, wide, full)")
    hf.add_argument("--concurrency", type=_ints, default=[1, 8], help="batch sizes")
    hf.add_argument("--tokens", type=int, default=16, help="greedy tokens per sequence")
    hf.add_argument("--prompt-len", type=int, default=32)
    hf.add_argument("--repeats", type=int, default=3, help="interleaved rounds; figures are medians")
    hf.add_argument("--dtype", help="float32 (default) or bfloat16")
    hf.add_argument("--threads", type=int, help="torch CPU threads")
    hf.add_argument("--json", action="store_true", help="one JSON object per batch size")
    hf.set_defaults(func=cmd_hf_compare)
