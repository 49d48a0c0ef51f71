"""Where a speech engine's step time goes — backbone decode, flow head, codec — measured without a profiler.

:class:`StageTimers` wraps the hot calls of one engine's program, in the benchmark only: the backbone
decode step and the per-frame head of its hot runner (``program.hot.decode`` / ``program.hot.frame_head``,
graphed or not) and its codec stage (``program.codec.decode``). Each wrapped call synchronizes the device
before and after, so GPU time lands in the stage that queued it (a few microseconds per call; the engine
already waits for every step's codes). A program without one of these calls reports no figure for it.
:meth:`StageTimers.close` puts the original calls back (a codec stage may be shared with the pipeline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from speechserve.bench.machine import synchronize

STAGES = {"backbone": ("hot", "decode"), "flow": ("hot", "frame_head"), "codec": ("codec", "decode")}
"""Stage name → (program attribute, method) it times."""


class StageTimers:
    """Cumulative seconds per stage of one engine program. Lifetime: the engine's."""

    def __init__(self, program: Any, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []
        for stage, (owner_name, method) in STAGES.items():
            owner = getattr(program, owner_name, None)
            call = getattr(owner, method, None)
            if callable(call):
                self.seconds[stage] = 0.0
                own = owner.__dict__.get(method)  # type: ignore[union-attr]
                setattr(owner, method, self._timed(stage, call))
                self._undo.append(
                    (lambda o=owner, m=method: delattr(o, m))
                    if own is None
                    else (lambda o=owner, m=method, f=own: setattr(o, m, f))
                )

    def close(self) -> None:
        """Put the timed calls back as they were."""
        while self._undo:
            self._undo.pop()()

    def _timed(self, stage: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            synchronize(self.device)
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                synchronize(self.device)
                self.seconds[stage] += time.perf_counter() - start

        return timed

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)

    def ms_per_frame(self, since: dict[str, float], frames: int) -> dict[str, float | None]:
        """Milliseconds per generated frame in each stage since ``since`` (None: stage not timed)."""
        return {
            f"{stage}_ms_per_frame": (
                1000 * (self.seconds[stage] - since[stage]) / frames
                if stage in self.seconds and frames
                else None
            )
            for stage in STAGES
        }
