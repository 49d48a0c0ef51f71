"""Measuring live Voxtral Realtime sessions (`speechserve bench realtime` asks the pipeline for these).

- :func:`realtime_point`: N sessions each receive 80 ms of audio every 80 ms of wall time (one feeder thread,
  the engine loop on another, as the server runs it). The *lag* of an id is the time from the push of the
  audio piece that made it computable to its delivery; the *step time* is one batched 80 ms position of every
  ready session (the runner's ``decode_streams``).
- :func:`long_session`: one session fed as fast as it decodes; over its last minute its steps alternate
  with those of a second session in its second minute (so other load on the machine hits both alike).

Random weights would end a session at their first end-of-stream id, so the sweep ignores stop ids: every
session decodes all its audio.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from speechserve.bench.metrics import percentile
from speechserve.models.voxtral_realtime.frontend import MelFramer
from speechserve.models.voxtral_realtime.request import AudioFeed, RealtimeRequest
from speechserve.models.voxtral_realtime.runner import StreamRunner

PIECE_SECONDS = 0.08
"""Audio pushed to every session per tick, and the tick: one decoder position, in real time."""
NOISE_AMPLITUDE = 0.1
"""Standard deviation of the random audio (float PCM); any audio costs the same per step."""


@dataclass(frozen=True)
class RealtimePoint:
    """One concurrency of the sweep."""

    concurrency: int
    audio_seconds: float
    """Audio each session received."""
    lag_ms_p50: float
    lag_ms_p95: float
    lag_ms_max: float
    step_ms_p50: float
    """One batched step (every ready session's next position), median."""
    batch_p50: float
    """Sessions per step, median."""
    realtime: bool
    """lag p95 under the limit: every session kept real-time pace."""


@dataclass(frozen=True)
class LongSession:
    """Step time of one session at two audio positions."""

    minutes: float
    step_ms_minute_1: float
    """Median step during the second minute of audio (minute 1 → 2)."""
    step_ms_last_minute: float
    ratio: float
    flat: bool


def _timed_sink() -> Any:
    """A ``TokenListSink`` that also stamps each delivered id (engine thread) in ``times``."""
    from speechserve.engine.offline import TokenListSink

    class TimedSink(TokenListSink):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def deliver(self, chunk: Any) -> None:
            self.times.append(time.perf_counter())
            super().deliver(chunk)

    return TimedSink()


def noise(seconds: float, rate: int, seed: int = 0) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal(round(seconds * rate)) * NOISE_AMPLITUDE).astype(np.float32)


def outputs_after_pieces(pipe: Any, n_pieces: int, piece: int) -> list[int]:
    """How many ids a session can have produced after each of its first ``n_pieces`` pushes of ``piece``
    samples: the prompt's positions first (one id), then one id per 80 ms position (the model's framing)."""
    import numpy as np

    cfg, prompt = pipe.model.cfg, pipe.stream_prompt(None)
    framer = MelFramer(cfg.encoder.audio, prompt.left_pad_samples, cfg.mel_frames_per_token)
    counts, silence = [], np.zeros(piece, np.float32)
    for _ in range(n_pieces):
        framer.push(silence)
        ready = framer.ready_tokens
        counts.append(0 if ready < len(prompt.ids) else ready - len(prompt.ids) + 1)
    return counts


def _lags(push_times: list[float], counts: list[int], token_times: list[float]) -> list[float]:
    """Delivery time of each id minus the push time of the piece that made it computable (seconds)."""
    lags, j = [], 0
    for k, delivered in enumerate(token_times):
        while j < len(counts) and counts[j] <= k:
            j += 1
        if j == len(counts):
            break  # ids decoded from the closing silence: no live piece made them computable
        lags.append(delivered - push_times[j])
    return lags


def _timed_steps(core: Any) -> tuple[list[float], list[int]]:
    """Time every batched step of the engine's runner (seconds) and count its sessions."""
    runner, times, sizes = core.program.runner, [], []
    step = runner.decode_streams

    def timed(streams):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        out = step(streams)
        times.append(time.perf_counter() - start)
        sizes.append(len(streams))
        return out

    runner.decode_streams = timed
    return times, sizes


def _feed(feeds: list[Any], audio: Any, piece: int) -> list[float]:
    """Push ``piece`` samples to every feed each 80 ms of wall time; the push times."""
    start, pushes = time.perf_counter(), []
    for j in range(len(audio) // piece):
        delay = start + j * PIECE_SECONDS - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        chunk = audio[j * piece : (j + 1) * piece]
        pushes.append(time.perf_counter())
        for feed in feeds:
            feed.push(chunk)
    for feed in feeds:
        feed.close()
    return pushes


def realtime_point(pipe: Any, concurrency: int, seconds: float, max_lag_ms: float) -> RealtimePoint:
    """``concurrency`` sessions of ``seconds`` of audio each, fed at real-time pace on one engine."""
    from speechserve.engine import EngineConfig, EngineCore

    core = EngineCore(pipe, EngineConfig(max_batch=concurrency))
    core.program.stop_ids = frozenset()  # random weights: decode every session to its end
    step_times, sizes = _timed_steps(core)
    feeds, sinks = [AudioFeed() for _ in range(concurrency)], [_timed_sink() for _ in range(concurrency)]
    for feed, sink in zip(feeds, sinks, strict=True):
        core.add(core.make_sequence(RealtimeRequest(feed), sink))
    piece = round(pipe.sample_rate * PIECE_SECONDS)
    audio = noise(seconds, pipe.sample_rate)

    def loop() -> None:
        while core.has_work:
            core.step()

    engine = threading.Thread(target=loop, name="bench-engine")
    engine.start()
    pushes = _feed(feeds, audio, piece)
    engine.join()
    counts = outputs_after_pieces(pipe, len(pushes), piece)
    lags = [1000 * x for s in sinks for x in _lags(pushes, counts, s.times)]
    p95 = percentile(lags, 95)
    return RealtimePoint(
        concurrency, len(pushes) * PIECE_SECONDS, percentile(lags, 50), p95, max(lags, default=float("nan")),
        1000 * percentile(step_times, 50), percentile(sizes, 50), p95 <= max_lag_ms,
    )  # fmt: skip


class _Feeder:
    """One session on its own runner slot, fed 80 ms pieces of looping noise and stepped by the caller."""

    def __init__(self, pipe: Any, runner: Any, slot: int, audio: Any) -> None:
        self.stream = runner.open(pipe.stream_prompt(None), slot)
        self.runner, self.audio, self.n_pieces = runner, audio, 0
        self.piece = round(pipe.sample_rate * PIECE_SECONDS)

    def step(self, times: list[float] | None = None) -> None:
        """Push the next piece and decode what it allows; the decode times (ms) go to ``times``."""
        offset = self.n_pieces * self.piece % (len(self.audio) - self.piece)
        self.stream.push(self.audio[offset : offset + self.piece])
        self.n_pieces += 1
        while self.stream.ready:
            start = time.perf_counter()
            logits = self.runner.decode_streams([self.stream])
            self.stream.last_id = int(logits[0].argmax())
            if times is not None:
                times.append(1000 * (time.perf_counter() - start))


def long_session(pipe: Any, minutes: float, tolerance: float, span_seconds: float = 60.0) -> LongSession:
    """A session fed ``minutes`` of audio as fast as it decodes, against a fresh session at minute 1: over
    ``span_seconds`` of audio their steps alternate (so load from elsewhere hits both alike) and their
    median step times are compared."""

    span = round(span_seconds / PIECE_SECONDS)
    n_pieces = round(minutes * 60 / PIECE_SECONDS)
    if n_pieces < 3 * span:
        raise ValueError(
            f"--minutes must cover at least 3 × {span_seconds:g} s (the second span against the last)"
        )
    runner, audio = StreamRunner(pipe.model, 2), noise(10.0, pipe.sample_rate)
    old, young = _Feeder(pipe, runner, 0, audio), _Feeder(pipe, runner, 1, audio)
    for _ in range(n_pieces - span):
        old.step()
    for _ in range(span):
        young.step()
    last, first = [], []
    for _ in range(span):
        old.step(last)
        young.step(first)
    a, b = percentile(first, 50), percentile(last, 50)
    return LongSession(minutes, a, b, b / a, b <= a * (1 + tolerance))
