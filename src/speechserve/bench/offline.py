"""Offline engine sweep for speech models: a burst of N simultaneous requests through one `EngineCore`.

Each point reports: TTFA p50/p95 (burst start → first audio chunk delivered), per-request RTF p50/p95
(generation time / audio duration), aggregate audio seconds and frames per second, time per generated frame
in the backbone, the flow head and the codec (:mod:`speechserve.bench.stages`), achieved weight bandwidth
(weight bytes each step reads × steps / wall), the engine's own overhead (step time outside model and codec
calls), peak RSS and GPU memory, and how many streams fell behind real time (a chunk that arrived after the
audio before it had finished playing, VoxServe's rule: :func:`speechserve.bench.metrics.chunk_viability`).

Every request is forced to the same length (END ignored where the family supports it). On CUDA each engine
first runs the same burst once unmeasured, so every CUDA graph bucket the burst reaches is captured before
the clock starts. At concurrency 1 :func:`engine_vs_bare` also times the bare model loop.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from speechserve.bench.machine import peak_gpu_mb, peak_rss_mb, release, reset_peak_gpu
from speechserve.bench.metrics import chunk_viability, percentile
from speechserve.bench.stages import StageTimers
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
    """A ListSink that notes when each chunk arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, int]] = []
        """(arrival time, frames) of every chunk that carried audio."""
        self.done_at: float | None = None

    @property
    def first_at(self) -> float | None:
        return self.arrivals[0][0] if self.arrivals else None

    def deliver(self, chunk: AudioChunk) -> None:
        if chunk.n_frames:
            self.arrivals.append((time.perf_counter(), chunk.n_frames))
        super().deliver(chunk)

    def close(self, finish_reason: str | None = None) -> None:
        self.done_at = time.perf_counter()
        super().close(finish_reason)

    def fell_behind(self, frame_seconds: float) -> bool:
        """True when a chunk arrived after the audio delivered before it had finished playing."""
        viability = chunk_viability(
            [t for t, _ in self.arrivals], [n * frame_seconds for _, n in self.arrivals]
        )
        return viability is not None and not viability[1]


@dataclass(frozen=True)
class SweepPoint:
    """One concurrency's figures (the median of repeated runs field by field; None: not measurable here)."""

    concurrency: int
    ttfa_ms_p50: float
    ttfa_ms_p95: float
    rtf_p50: float
    rtf_p95: float
    audio_s_per_s: float
    frames_per_s: float
    backbone_ms_per_frame: float | None
    flow_ms_per_frame: float | None
    codec_ms_per_frame: float | None
    engine_overhead_pct: float
    weight_gb_per_s: float | None
    late_streams: float
    """Streams that fell behind real time at least once."""
    peak_rss_mb: float
    peak_gpu_mb: float | None
    wall_s: float

    def record(self, **context: Any) -> dict[str, Any]:
        """The point as one JSON-ready object, ``context`` (model, dtype, isq, …) first."""
        return {**context, **asdict(self)}


def median_point(points: list[SweepPoint]) -> SweepPoint:
    """Field-wise median of repeated runs of one concurrency (None stays None)."""

    def med(name: str) -> Any:
        values = [getattr(p, name) for p in points]
        return None if any(v is None for v in values) else statistics.median(values)

    return SweepPoint(**{f.name: med(f.name) for f in fields(SweepPoint)})


class SpeechBench:
    """One engine sized for ``concurrency`` streams, running the same burst as often as asked.

    Lifetime: one sweep point; :meth:`close` restores the timed calls and frees the engine's memory."""

    def __init__(self, pipe: Any, concurrency: int, max_seq_len: int, eager: bool = False) -> None:
        self.pipe, self.concurrency = pipe, concurrency
        self.device = pipe.device
        config = EngineConfig(
            max_batch=concurrency, max_seq_len=max_seq_len, max_waiting=concurrency, eager=eager
        )
        self.core = EngineCore(pipe, config)
        self.timers = StageTimers(self.core.program, self.device)
        self.frame_seconds = pipe.samples_per_frame / pipe.sample_rate
        reset_peak_gpu(self.device)

    @property
    def weight_bytes_per_step(self) -> int | None:
        """Weight bytes one engine step reads, when the family says (None: it does not). Under ISQ they are
        the bytes as stored: int8 values plus per-channel scales (``models.quantize.weight_bytes``)."""
        count = getattr(self.pipe, "weight_bytes_per_step", None)
        return None if count is None else count()

    @property
    def uses_graphs(self) -> bool:
        """Whether the engine replays CUDA graphs (False on CPU and with ``eager``)."""
        return bool(getattr(getattr(self.core.program, "hot", None), "use_graphs", False))

    def _burst(self, n: int, frames: int, text: str) -> list[TimedSink]:
        sinks = []
        for i in range(n):
            sink = TimedSink()
            options = SynthesisOptions(seed=i, max_frames=frames, ignore_end=True)
            self.core.add(self.core.make_sequence(SpeechRequest(text, None, None, options), sink))
            sinks.append(sink)
        while self.core.has_work:
            self.core.step()
        failed = next((s.error for s in sinks if s.error is not None), None)
        if failed is not None:
            raise failed
        return sinks

    def warm(self, frames: int, text: str) -> None:
        """On CUDA the measured burst once (captures every graph bucket it reaches); elsewhere one short
        request (lazy initialisation only)."""
        if self.device.type == "cuda":
            self._burst(self.concurrency, frames, text)
        else:
            self._burst(1, min(frames, 4), "Warm up.")

    def run(self, frames: int, text: str) -> SweepPoint:
        c = self.core.counters
        before, stages = dict(vars(c)), self.timers.snapshot()
        start = time.perf_counter()
        sinks = self._burst(self.concurrency, frames, text)
        wall = time.perf_counter() - start
        model_s = c.model_seconds + c.codec_seconds - before["model_seconds"] - before["codec_seconds"]
        step_s = c.step_seconds - before["step_seconds"]
        n_frames = c.frames - before["frames"]
        audio = [sum(n for _, n in s.arrivals) * self.frame_seconds for s in sinks]
        ttfa = [(s.first_at - start) * 1000 for s in sinks if s.first_at is not None]
        rtf = [((s.done_at or start) - start) / a for s, a in zip(sinks, audio, strict=True) if a]
        per_step = self.weight_bytes_per_step
        gbps = per_step * (c.steps - before["steps"]) / wall / 1e9 if per_step else None
        return SweepPoint(
            self.concurrency, percentile(ttfa, 50), percentile(ttfa, 95), percentile(rtf, 50), percentile(rtf, 95),
            sum(audio) / wall, n_frames / wall, **self.timers.ms_per_frame(stages, n_frames),
            engine_overhead_pct=100 * (step_s - model_s) / model_s if model_s else float("nan"),
            weight_gb_per_s=gbps, late_streams=sum(s.fell_behind(self.frame_seconds) for s in sinks),
            peak_rss_mb=peak_rss_mb(), peak_gpu_mb=peak_gpu_mb(self.device), wall_s=wall,
        )  # fmt: skip

    def close(self) -> None:
        self.timers.close()
        del self.core
        release(self.device)


def sweep_point(
    pipe: Any,
    concurrency: int,
    frames: int,
    text: str,
    max_seq_len: int,
    eager: bool = False,
    repeats: int = 1,
) -> tuple[SweepPoint, bool]:
    """The median of ``repeats`` measured bursts on one warmed engine, and whether it replayed CUDA graphs."""
    bench = SpeechBench(pipe, concurrency, max_seq_len, eager)
    try:
        bench.warm(frames, text)
        point = median_point([bench.run(frames, text) for _ in range(repeats)])
        return point, bench.uses_graphs
    finally:
        bench.close()


def engine_vs_bare(pipe: Any, frames: int, text: str, repeats: int) -> tuple[float, float]:
    """Median seconds for one request through the engine and through the bare loop, interleaved run by run.

    The engine runs with the bare loop's fixed chunk schedule (no wall-clock slack policy), so both do the
    same model and codec work and the difference is the engine's own cost."""
    engine, bare = [], []
    for _ in range(repeats):
        core = EngineCore(pipe, EngineConfig(max_batch=1, max_seq_len=1024, low_slack_seconds=float("-inf")))
        _drain(
            core, SpeechRequest("Warm up.", options=SynthesisOptions(seed=0, max_frames=4, ignore_end=True))
        )
        start = time.perf_counter()
        _drain(
            core, SpeechRequest(text, options=SynthesisOptions(seed=0, max_frames=frames, ignore_end=True))
        )
        engine.append(time.perf_counter() - start)
        bare.append(pipe.bare_loop_seconds(frames, text))
    return statistics.median(engine), statistics.median(bare)


def _drain(core: EngineCore, request: SpeechRequest) -> None:
    core.add(core.make_sequence(request, ListSink()))
    while core.has_work:
        core.step()
