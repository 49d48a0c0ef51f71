"""Offline engine sweep: N simultaneous requests through `EngineCore`, for N over a concurrency list.

Reports per concurrency: TTFA p50/p95 (submit → first chunk delivered), per-request RTF p50/p95
(generation time / audio duration), aggregate audio seconds per second, frames per second, achieved
weight bandwidth (bytes of weights each step must read × steps / wall), and the engine's own overhead
(step time outside model and codec calls). At concurrency 1 it also times the bare model loop.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from speechserve.bench.metrics import percentile
from speechserve.engine import EngineConfig, EngineCore, SpeechRequest
from speechserve.engine.offline import ListSink
from speechserve.options import AudioChunk, SynthesisOptions

TEXT_500 = (
    "The old lighthouse keeper climbed the spiral stairs every evening, counting each of the one hundred and "
    "twelve steps as his father had taught him. At the top, he polished the great lens until it gleamed, then "
    "lit the lamp and watched its beam sweep across the restless water. Ships passed in the distance, their "
    "lights blinking like tiny stars, and he wondered where each of them was going. Some nights the fog rolled "
    "in so thick that the beam seemed to vanish, yet he never doubted that someone, somewhere, was grateful."
)


class TimedSink(ListSink):
    """A ListSink that notes when its first chunk arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.first_at: float | None = None
        self.done_at: float | None = None

    def deliver(self, chunk: AudioChunk) -> None:
        if self.first_at is None and chunk.n_frames:
            self.first_at = time.perf_counter()
        super().deliver(chunk)

    def close(self, finish_reason: str | None = None) -> None:
        self.done_at = time.perf_counter()
        super().close(finish_reason)


@dataclass(frozen=True)
class SweepPoint:
    concurrency: int
    ttfa_p50_ms: float
    ttfa_p95_ms: float
    rtf_p50: float
    rtf_p95: float
    audio_seconds_per_second: float
    frames_per_second: float
    weight_gb_per_second: float
    overhead_pct: float
    wall_seconds: float


def run_point(
    pipe: Any, concurrency: int, frames: int, text: str, max_seq_len: int, eager: bool = False
) -> SweepPoint:
    core = EngineCore(
        pipe,
        EngineConfig(max_batch=concurrency, max_seq_len=max_seq_len, max_waiting=concurrency, eager=eager),
    )
    _warm(core, pipe)
    sinks: list[TimedSink] = []
    start = time.perf_counter()
    for i in range(concurrency):
        sink = TimedSink()
        req = SpeechRequest(text, options=SynthesisOptions(seed=i, max_frames=frames, ignore_end=True))
        core.add(core.make_sequence(req, sink))
        sinks.append(sink)
    before = dict(vars(core.counters))
    while core.has_work:
        core.step()
    wall = time.perf_counter() - start
    c = core.counters
    model_s = c.model_seconds + c.codec_seconds - before["model_seconds"] - before["codec_seconds"]
    step_s = c.step_seconds - before["step_seconds"]
    audio = [sum(ch.n_frames for ch in s.chunks) * pipe.samples_per_frame / pipe.sample_rate for s in sinks]
    ttfa = [(s.first_at - start) * 1000 for s in sinks if s.first_at]
    rtf = [((s.done_at or start) - start) / a for s, a in zip(sinks, audio, strict=True) if a]
    steps = c.steps - before["steps"]
    gbps = pipe.weight_bytes_per_step() * steps / wall / 1e9
    return SweepPoint(
        concurrency, percentile(ttfa, 50), percentile(ttfa, 95), percentile(rtf, 50), percentile(rtf, 95),
        sum(audio) / wall, (c.frames - before["frames"]) / wall, gbps, 100 * (step_s - model_s) / model_s, wall,
    )  # fmt: skip


def median_point(points: list[SweepPoint]) -> SweepPoint:
    """Field-wise median of repeated runs of one concurrency."""
    fields = SweepPoint.__dataclass_fields__
    return SweepPoint(**{f: statistics.median(getattr(p, f) for p in points) for f in fields})  # type: ignore[arg-type]


def _warm(core: EngineCore, pipe: Any) -> None:
    sink = ListSink()
    req = SpeechRequest("Warm up.", options=SynthesisOptions(seed=0, max_frames=4, ignore_end=True))
    core.add(core.make_sequence(req, sink))
    while core.has_work:
        core.step()


def engine_vs_bare(pipe: Any, frames: int, text: str, repeats: int) -> tuple[float, float]:
    """Median seconds for one request through the engine and through the bare loop, interleaved run by run.

    The engine runs with the bare loop's fixed chunk schedule (no wall-clock slack policy), so both do the
    same model and codec work and the difference is the engine's own cost."""
    engine, bare = [], []
    for _ in range(repeats):
        core = EngineCore(pipe, EngineConfig(max_batch=1, max_seq_len=1024, low_slack_seconds=float("-inf")))
        _warm(core, pipe)
        start = time.perf_counter()
        req = SpeechRequest(text, options=SynthesisOptions(seed=0, max_frames=frames, ignore_end=True))
        core.add(core.make_sequence(req, ListSink()))
        while core.has_work:
            core.step()
        engine.append(time.perf_counter() - start)
        bare.append(pipe.bare_loop_seconds(frames, text))
    return statistics.median(engine), statistics.median(bare)
