"""`speechserve bench …` and `speechserve dev …` subcommands (registered by `speechserve.cli`).

Registering them imports nothing heavy (torch and the model code load when a command runs), so
`speechserve --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from speechserve.bench.realtime import add_realtime_parser
from speechserve.cli import ISQ_MODES, UsageError, add_isq_arg

if TYPE_CHECKING:
    from speechserve.registry import Family

PRESETS = ("tiny", "small", "wide", "full")
"""Random-checkpoint sizes: tiny (tests), small (CPU benchmarks), wide (the real widths, few layers: real
per-layer costs on a CPU), full (the release's sizes)."""


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",")]


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",")]


def _names(s: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def _isq_modes(s: str) -> tuple[str, ...]:
    modes = _names(s)
    bad = [m for m in modes if m not in ("none", *ISQ_MODES)]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown mode {bad[0]!r}; use none, {', '.join(ISQ_MODES)}")
    return modes


def _bench_pipeline(args: argparse.Namespace, capability: str, refusal: str) -> tuple[Any, str]:
    """The model a bench measures (a random one of ``--preset`` from the first family with ``capability``,
    unless ``--model``) and its name; a model without ``capability`` is a usage error (``refusal``, with
    ``{family}``)."""
    import torch

    import speechserve
    from speechserve.cli import check_device, check_isq
    from speechserve.loading import model_id

    isq = getattr(args, "isq", None)
    check_device(args.device)
    check_isq(isq, args.device)
    model = args.model
    if model is None:
        family = _writer_family(args.family, capability=capability)
        model = _write(family, tempfile.mkdtemp(prefix="speechserve-bench-"), args.preset, seed=0)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = speechserve.load(model, device=args.device, dtype=args.dtype, isq=isq)
    if capability not in pipe.family.capabilities:
        raise UsageError(refusal.format(family=pipe.family.name))
    return pipe, model_id(args.model) if args.model else f"random {args.preset} {pipe.family.name}"


def cmd_bench_offline(args: argparse.Namespace) -> int:
    from speechserve.bench.machine import copy_gb_per_s, hardware_line
    from speechserve.bench.offline import TEXT_500, sweep_point

    pipe, name = _bench_pipeline(
        args, "speech", "bench offline measures speech models; {family} is not one (see `bench gpu`)"
    )
    text = args.text or TEXT_500
    context = {"model": name, "device": str(pipe.device), "dtype": str(pipe.dtype).removeprefix("torch."),
               "isq": args.isq, "eager": args.eager, "frames_per_request": args.frames}  # fmt: skip
    if args.json:
        context["copy_gb_per_s"] = copy_gb_per_s(pipe.device)
    else:
        print(f"# offline sweep: {name} on {hardware_line(pipe.device)}, dtype {pipe.dtype}, isq {args.isq or 'none'}, "
              f"{args.frames} frames/request, {len(text)}-char prompt, medians of {args.repeats} runs")  # fmt: skip
        print("| concurrency | TTFA p50 ms | TTFA p95 ms | RTF p50 | RTF p95 | audio s/s | frames/s | weight GB/s | engine overhead % |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
    points = []
    for c in args.concurrency:
        p, graphs = sweep_point(pipe, c, args.frames, text, args.max_seq_len, args.eager, args.repeats)
        points.append(p)
        if args.json:
            print(json.dumps(p.record(**context, cuda_graphs=graphs)), flush=True)
        else:
            gbps = "n/a" if p.weight_gb_per_s is None else f"{p.weight_gb_per_s:.2f}"
            print(f"| {c} | {p.ttfa_ms_p50:.1f} | {p.ttfa_ms_p95:.1f} | {p.rtf_p50:.3f} | {p.rtf_p95:.3f} | "
                  f"{p.audio_s_per_s:.2f} | {p.frames_per_s:.1f} | {gbps} | {p.engine_overhead_pct:.1f} |", flush=True)  # fmt: skip
    if not args.json:
        _offline_tail(pipe, points, args, text)
    return 0


def _offline_tail(pipe: Any, points: list[Any], args: argparse.Namespace, text: str) -> None:
    """The engine against the bare model loop at concurrency 1, and throughput relative to concurrency 1."""
    from speechserve.bench.offline import engine_vs_bare

    if 1 in args.concurrency and hasattr(pipe, "bare_loop_seconds"):
        eng, bare = engine_vs_bare(pipe, args.frames, text, args.repeats)
        print(f"\none request, same chunk schedule, medians of {args.repeats} interleaved runs: engine {eng:.3f} s "
              f"vs bare model loop {bare:.3f} s ({100 * (eng - bare) / bare:+.1f} %)")  # fmt: skip
    base = next((p for p in points if p.concurrency == 1), None)
    if base:
        for p in points:
            print(f"throughput at concurrency {p.concurrency}: {p.audio_s_per_s / base.audio_s_per_s:.2f}x concurrency 1")  # fmt: skip


def cmd_bench_gpu(args: argparse.Namespace) -> int:
    from pathlib import Path

    from speechserve.bench.gpu import SECTIONS, Run, plan_from, run_all
    from speechserve.cli import check_device
    from speechserve.loading import pick_device, pick_dtype

    check_device(args.device)
    unknown = sorted(set(args.sections or ()) - set(SECTIONS))
    if unknown:
        raise UsageError(f"--sections: no section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    isq = None if args.isq is None else tuple(None if m == "none" else m for m in args.isq)
    plan = plan_from(args.smoke, preset=args.preset, concurrency=args.concurrency, frames=args.frames,
                     capacity=args.capacity, isq=isq, repeats=args.repeats, sections=args.sections)  # fmt: skip
    device = pick_device(args.device)
    if device.type != "cuda" and plan.preset == "full":
        raise UsageError("bench gpu needs a CUDA device for full-size models; for a dry run on this machine "
                         "pass --device cpu --smoke")  # fmt: skip
    out = Path(args.out)
    _check_target_directory(str(out))
    run = Run(plan, out, device, pick_dtype(args.dtype, device), Path(args.checkpoints))
    summary = run_all(run)
    print(f"# saved {', '.join(summary['files'].values())} and summary.json in {out}", file=sys.stderr)
    return 1 if summary["failed"] else 0


def cmd_bench_http(args: argparse.Namespace) -> int:
    import asyncio

    from speechserve.bench.http_load import run_sweep

    asyncio.run(run_sweep(args.url, args.rate, args.duration, args.seed, args.model_name, args.voice, args.text, args.api_key, args.burstiness, args.max_tokens))  # fmt: skip
    return 0


def _writer_family(name: str | None, capability: str = "speech") -> Family:
    """The family called ``name`` (None: the first family with ``capability``) that can write random
    checkpoints."""
    from speechserve import registry

    writers = [f for f in registry.families() if f.write_random is not None]
    if name is None:
        return next(f for f in writers if capability in f.capabilities)
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
    """Register `bench offline`, `bench gpu`, `bench http`, `bench realtime` and `dev random-checkpoint`."""
    bench = sub.add_parser("bench", help="benchmarks (offline engine sweep, HTTP streaming load)")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    off = bsub.add_parser("offline", help="engine sweep over concurrency")
    off.add_argument("--model", help="checkpoint (default: a random one of --preset)")
    off.add_argument("--preset", default="tiny", choices=PRESETS)
    off.add_argument("--family", help="family of the random checkpoint (default: the first speech family)")
    off.add_argument("--concurrency", type=_ints, default=[1, 2, 4, 8, 16, 32, 64])
    off.add_argument("--frames", type=int, default=40, help="frames per request, forced (END ignored)")
    off.add_argument("--text", help="prompt text (default: a 500-character paragraph)")
    off.add_argument("--max-seq-len", type=int, default=1024)
    off.add_argument("--device")
    off.add_argument("--dtype")
    add_isq_arg(off)
    off.add_argument("--threads", type=int, help="torch CPU threads")
    off.add_argument("--eager", action="store_true", help="no CUDA graphs (compare with and without)")
    off.add_argument("--repeats", type=int, default=3, help="runs per point; every figure is their median")
    off.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per concurrency (TTFA, RTF, frames/s, backbone/flow/codec ms per frame, peak RSS, "
        "weight GB/s next to the measured copy GB/s) instead of the table",
    )
    off.set_defaults(func=cmd_bench_offline)
    gpu = bsub.add_parser(
        "gpu",
        help="every GPU figure in one folder: golden parity, TTS sweeps with/without CUDA graphs and ISQ, "
        "real-time capacity, the other families' throughput",
        description="Writes random checkpoints of every family (--preset full), then saves each section as "
        "OUT/<section>.json (and prints every record as a JSON line). --device cpu --smoke: a dry run on tiny "
        "checkpoints in about a minute.",
    )
    gpu.add_argument("--out", default="speechserve-bench-gpu", help="folder of the JSON files (created)")
    gpu.add_argument(
        "--checkpoints",
        default=os.path.join(tempfile.gettempdir(), "speechserve-bench-checkpoints"),
        help="where the random checkpoints are written, and reused by later runs",
    )
    gpu.add_argument("--device", help="cuda (default when available), cuda:N, or cpu with --smoke")
    gpu.add_argument("--dtype", help="default: bf16 on cuda, fp32 on cpu")
    gpu.add_argument("--smoke", action="store_true", help="tiny checkpoints, concurrency 1 and 2, few frames")
    gpu.add_argument("--preset", choices=PRESETS, help="checkpoint size (default: full; tiny with --smoke)")
    gpu.add_argument(
        "--sections", type=_names, help="comma-separated subset of machine,golden,tts,capacity,families"
    )
    gpu.add_argument("--concurrency", type=lambda s: tuple(_ints(s)), help="TTS sweep (default 1,16,32,64)")
    gpu.add_argument("--capacity", type=lambda s: tuple(_ints(s)), help="real-time capacity ladder")
    gpu.add_argument("--frames", type=int, help="frames per TTS request (default 125 = 10 s)")
    gpu.add_argument("--isq", type=_isq_modes, help="ISQ modes of the TTS sweep (default none,int8,int4,fp8)")
    gpu.add_argument("--repeats", type=int, help="runs per point (median; default 1)")
    gpu.set_defaults(func=cmd_bench_gpu)
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
    from speechserve.bench.speech_stream import add_subcommand as add_speech_stream

    add_speech_stream(bsub)  # bench speech-stream
    add_realtime_parser(bsub, PRESETS, _ints)

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
        choices=PRESETS,
        help="tiny (tests, seconds), small (benchmarks), wide (the real widths with a few layers, ≤ 3 GB) or "
        "full (the release's sizes, GBs); default tiny",
    )
    rc.add_argument(
        "--with-encoder", action="store_true", help="also write codec-encoder weights (voice cloning)"
    )
    rc.add_argument("--seed", type=int, default=0)
    rc.set_defaults(func=cmd_random_checkpoint)
    fam = dsub.add_parser("families", help="list the model families this build knows")
    fam.set_defaults(func=cmd_families)
    from speechserve.bench import isq_cli  # `dev quantize`, `bench hf-compare`

    isq_cli.register(bsub, dsub)


def cmd_families(args: argparse.Namespace) -> int:
    from speechserve import registry

    for f in registry.families():
        print(f"{f.name}: {', '.join(sorted(f.capabilities))} — {f.description}")
    return 0
