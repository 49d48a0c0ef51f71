"""`speechserve bench realtime`: live transcription sessions on the engine, fed at real-time pace.

Two measurements on a realtime model (Voxtral Realtime):

- **concurrency sweep**: N sessions each receive 80 ms of audio every 80 ms of wall time (one feeder thread,
  the engine loop on another, as the server runs it). The *lag* of an id is the time from the push of the
  audio piece that made it computable to its delivery; a concurrency *keeps real-time pace* while the lag's
  p95 stays under ``--max-lag-ms``. The *step time* is one batched 80 ms position of every ready session
  (the runner's ``decode_streams``).
- **step time vs session minute**: one session fed as fast as it decodes for ``--minutes`` of audio; over
  its last minute its steps alternate with those of a second session in its second minute (so other load
  on the machine hits both alike): flat, within 10 %, when the ring caches slide.

Random weights would end a session at their first end-of-stream id, so the sweep ignores stop ids: every
session decodes all its audio. The measuring itself is the family's (``pipe.bench_realtime_point`` and
``pipe.bench_long_session``, in the family's ``bench.py``); this module is the command. Importing it
imports nothing heavy (the CLI registers it).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

FLAT_TOLERANCE = 0.10
"""Step time in the last minute may exceed the second minute's by this fraction and still count as flat."""


# ---- the command ---------------------------------------------------------------------------------------------
def cmd_bench_realtime(args: argparse.Namespace) -> int:
    import json

    from speechserve.bench.cli import _bench_pipeline
    from speechserve.bench.machine import hardware_line

    pipe, name = _bench_pipeline(
        args, "realtime", "bench realtime measures realtime models; {family} is not one"
    )
    context = {"model": name, "device": str(pipe.device), "dtype": str(pipe.dtype).removeprefix("torch.")}
    if not args.json:
        print(f"# realtime sessions: {name} on {hardware_line(pipe.device)}, dtype {pipe.dtype}, {args.seconds:g} s "
              f"of audio per session at real-time pace, real-time = lag p95 ≤ {args.max_lag_ms:g} ms")  # fmt: skip
        print(
            "| sessions | lag p50 ms | lag p95 ms | lag max ms | step ms p50 | sessions/step p50 | real-time |"
        )
        print("|---|---|---|---|---|---|---|")
    best = 0
    for c in args.concurrency:
        p = pipe.bench_realtime_point(c, args.seconds, args.max_lag_ms)
        best = max(best, c) if p.realtime else best
        if args.json:
            print(json.dumps({"kind": "realtime_sessions", **context, **asdict(p)}), flush=True)
        else:
            print(f"| {c} | {p.lag_ms_p50:.1f} | {p.lag_ms_p95:.1f} | {p.lag_ms_max:.1f} | {p.step_ms_p50:.2f} | "
                  f"{p.batch_p50:g} | {'yes' if p.realtime else 'no'} |", flush=True)  # fmt: skip
    if not args.json:
        print(
            f"\nmost sessions kept at real-time pace: {best or 'none'} (of {', '.join(map(str, args.concurrency))})"
        )
    if args.minutes:
        s = pipe.bench_long_session(args.minutes, FLAT_TOLERANCE)
        if args.json:
            print(json.dumps({"kind": "long_session", **context, **asdict(s)}), flush=True)
        else:
            print(f"one session after {s.minutes:g} min of audio (fed as fast as it decodes): step {s.step_ms_last_minute:.2f} ms "
                  f"vs {s.step_ms_minute_1:.2f} ms for a session at minute 1, steps alternated ({100 * (s.ratio - 1):+.1f} %, "
                  f"{'flat' if s.flat else 'NOT flat'} within {100 * FLAT_TOLERANCE:.0f} %)")  # fmt: skip
    return 0


def add_realtime_parser(bsub: Any, presets: tuple[str, ...], ints: Any) -> None:
    """Register `bench realtime` (imports nothing heavy)."""
    rt = bsub.add_parser("realtime", help="live transcription sessions fed at real-time pace on the engine")
    rt.add_argument("--model", help="realtime checkpoint (default: a random one of --preset)")
    rt.add_argument("--preset", default="tiny", choices=presets)
    rt.add_argument("--family", help="family of the random checkpoint (default: the first realtime family)")
    rt.add_argument("--concurrency", type=ints, default=[1, 2, 4, 8, 16], help="sessions per point")
    rt.add_argument("--seconds", type=float, default=10.0, help="audio per session in the sweep (fed live)")
    rt.add_argument("--max-lag-ms", type=float, default=200.0, help="lag p95 that still counts as real-time")
    rt.add_argument(
        "--minutes", type=float, default=30.0, help="audio of the long session (0: skip it; default 30)"
    )
    rt.add_argument("--device")
    rt.add_argument("--dtype")
    rt.add_argument("--threads", type=int, help="torch CPU threads")
    rt.add_argument("--json", action="store_true", help="one JSON object per point and for the long session")
    rt.set_defaults(func=cmd_bench_realtime)
