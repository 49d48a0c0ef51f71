"""`speechserve bench …` and `speechserve dev …` subcommands (registered by `speechserve.cli`).

Registering them imports nothing heavy (torch and the model code load when a command runs), so
`speechserve --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from typing import TYPE_CHECKING

from speechserve.cli import UsageError

if TYPE_CHECKING:
    import torch

    from speechserve.registry import Family


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",")]


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",")]


def _hardware(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"
    )


def cmd_bench_offline(args: argparse.Namespace) -> int:
    import torch

    import speechserve
    from speechserve.bench.offline import TEXT_500, engine_vs_bare, median_point, run_point

    model = args.model
    if model is None:
        family = _writer_family(args.family)
        model = _write(family, tempfile.mkdtemp(prefix="speechserve-bench-"), args.preset, seed=0)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = speechserve.load(model, device=args.device, dtype=args.dtype)
    text = args.text or TEXT_500
    print(f"# offline sweep: {args.model or 'random ' + args.preset} on {_hardware(pipe.device)}, "
          f"dtype {pipe.dtype}, {args.frames} frames/request, {len(text)}-char prompt, "
          f"medians of {args.repeats} runs")  # fmt: skip
    print("| concurrency | TTFA p50 ms | TTFA p95 ms | RTF p50 | RTF p95 | audio s/s | frames/s | weight GB/s | engine overhead % |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    points = []
    for c in args.concurrency:
        p = median_point(
            [run_point(pipe, c, args.frames, text, args.max_seq_len, args.eager) for _ in range(args.repeats)]
        )
        points.append(p)
        print(f"| {c} | {p.ttfa_p50_ms:.1f} | {p.ttfa_p95_ms:.1f} | {p.rtf_p50:.3f} | {p.rtf_p95:.3f} | "
              f"{p.audio_seconds_per_second:.2f} | {p.frames_per_second:.1f} | {p.weight_gb_per_second:.2f} | {p.overhead_pct:.1f} |", flush=True)  # fmt: skip
    if 1 in args.concurrency:
        eng, bare = engine_vs_bare(pipe, args.frames, text, args.repeats)
        print(f"\none request, same chunk schedule, medians of {args.repeats} interleaved runs: engine {eng:.3f} s "
              f"vs bare model loop {bare:.3f} s ({100 * (eng - bare) / bare:+.1f} %)")  # fmt: skip
    base = next((p for p in points if p.concurrency == 1), None)
    if base:
        for p in points:
            print(f"throughput at concurrency {p.concurrency}: {p.audio_seconds_per_second / base.audio_seconds_per_second:.2f}x concurrency 1")  # fmt: skip
    return 0


def cmd_bench_http(args: argparse.Namespace) -> int:
    import asyncio

    from speechserve.bench.http_load import run_sweep

    asyncio.run(run_sweep(args.url, args.rate, args.duration, args.seed, args.model_name, args.voice, args.text, args.api_key, args.burstiness, args.max_tokens))  # fmt: skip
    return 0


def _writer_family(name: str | None) -> Family:
    """The family called ``name`` (None: the first speech family) that can write random checkpoints."""
    from speechserve import registry

    writers = [f for f in registry.families() if f.write_random is not None]
    if name is None:
        return next(f for f in writers if "speech" in f.capabilities)
    for family in writers:
        if family.name == name:
            return family
    known = ", ".join(f.name for f in writers)
    raise UsageError(f"--family {name}: no such family writes random checkpoints; choose one of {known}")


def _write(family: Family, directory: str, preset: str, seed: int, **extra: object) -> str:
    """``family.write_random``, with a preset or option the family does not have as a usage error."""
    writer = family.write_random
    if writer is None:
        raise UsageError(f"{family.name} cannot write random checkpoints")
    try:
        return str(writer(directory, preset=preset, seed=seed, **extra))
    except KeyError as exc:  # a family's preset table, indexed by the name
        if exc.args != (preset,):
            raise
        raise UsageError(f"--preset {preset}: {family.name} has no such preset") from None
    except TypeError as exc:  # an option this family's writer does not take
        option = next((k for k in extra if repr(k) in str(exc)), None)
        if option is None:
            raise
        flag = "--" + option.replace("_", "-")
        raise UsageError(f"{flag} does not apply to {family.name} checkpoints") from None


def _check_target_directory(directory: str) -> None:
    """A random checkpoint is written into ``directory`` (created with its parents): refuse, before any
    weights are drawn, a path that is a file or that lies under something that cannot be written."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(f"{directory} is a file; give a directory to write the checkpoint into")
    parent = os.path.abspath(directory)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"cannot create {directory}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {directory}: {parent} is not writable")


def cmd_random_checkpoint(args: argparse.Namespace) -> int:
    family = _writer_family(args.family)
    _check_target_directory(args.directory)
    extra = {"with_encoder": True} if args.with_encoder else {}
    root = _write(family, args.directory, args.preset, args.seed, **extra)
    print(f"wrote a random {args.preset} {family.name} checkpoint ({family.description}) to {root}")
    return 0


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register `bench offline`, `bench http` and `dev random-checkpoint`."""
    bench = sub.add_parser("bench", help="benchmarks (offline engine sweep, HTTP streaming load)")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    off = bsub.add_parser("offline", help="engine sweep over concurrency")
    off.add_argument("--model", help="checkpoint (default: a random one of --preset)")
    off.add_argument("--preset", default="tiny", choices=["tiny", "small", "full"])
    off.add_argument("--family", help="family of the random checkpoint (default: the first speech family)")
    off.add_argument("--concurrency", type=_ints, default=[1, 2, 4, 8, 16, 32, 64])
    off.add_argument("--frames", type=int, default=40, help="frames per request, forced (END ignored)")
    off.add_argument("--text", help="prompt text (default: a 500-character paragraph)")
    off.add_argument("--max-seq-len", type=int, default=1024)
    off.add_argument("--device")
    off.add_argument("--dtype")
    off.add_argument("--threads", type=int, help="torch CPU threads")
    off.add_argument("--eager", action="store_true", help="no CUDA graphs (compare with and without)")
    off.add_argument("--repeats", type=int, default=3, help="runs per point; every figure is their median")
    off.set_defaults(func=cmd_bench_offline)
    http = bsub.add_parser("http", help="Poisson load against a running server, VoxServe's TTFA/viability")
    http.add_argument("--url", default="http://127.0.0.1:8000")
    http.add_argument("--rate", type=_floats, default=[0.5, 1, 2, 4], help="requests/s list")
    http.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals per rate")
    http.add_argument("--burstiness", type=float, default=1.0, help="Gamma shape (1.0 = Poisson)")
    http.add_argument("--seed", type=int, default=42)
    http.add_argument("--model-name", default=None, help="`model` field (default: the server's first)")
    http.add_argument("--voice", default="casual_male")
    http.add_argument("--text", default=None)
    http.add_argument("--api-key", default=None)
    http.add_argument("--max-tokens", type=int, default=250, help="frames per request (250 = 20 s of audio)")
    http.set_defaults(func=cmd_bench_http)

    dev = sub.add_parser("dev", help="developer tools")
    dsub = dev.add_subparsers(dest="dev_command", required=True)
    rc = dsub.add_parser("random-checkpoint", help="write a random-weight checkpoint in the release layout")
    rc.add_argument("directory")
    rc.add_argument(
        "--family", help="model family (`speechserve dev families`; default: the first speech family)"
    )
    rc.add_argument(
        "--preset",
        default="tiny",
        choices=["tiny", "small", "full"],
        help="tiny (tests, seconds), small (benchmarks) or full (the release's sizes, GBs); default tiny",
    )
    rc.add_argument(
        "--with-encoder", action="store_true", help="also write codec-encoder weights (voice cloning)"
    )
    rc.add_argument("--seed", type=int, default=0)
    rc.set_defaults(func=cmd_random_checkpoint)
    fam = dsub.add_parser("families", help="list the model families this build knows")
    fam.set_defaults(func=cmd_families)


def cmd_families(args: argparse.Namespace) -> int:
    from speechserve import registry

    for f in registry.families():
        print(f"{f.name}: {', '.join(sorted(f.capabilities))} — {f.description}")
    return 0
