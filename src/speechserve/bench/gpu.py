"""`speechserve bench gpu`: every figure a GPU run owes (issue 16) from one command and this repository only.

It writes random checkpoints of every family (``--preset full``: the real sizes), then runs the sections
and saves each as ``OUT/<section>.json`` (every record is also printed as one JSON line as it is measured),
plus ``OUT/summary.json``:

- ``machine``: the hardware, torch, and the measured memory copy bandwidth (the floor of every GB/s figure);
- ``golden``: parity with every case under ``tests/golden`` (fp32, TF32 off) and Voxtral TTS's cases on the
  benchmark device in fp32 and bf16 (:mod:`speechserve.bench.golden`);
- ``tts``: TTFA p50/p95, RTF, frames/s and the backbone/flow/codec split per frame at each concurrency,
  with and without CUDA graphs, for each ISQ mode (a mode the machine cannot run is recorded as refused);
- ``capacity``: the largest burst of streams that all stay at real time, stepping up a ladder until the
  first stream falls behind, with and without CUDA graphs;
- ``families``: every other family's frames (speech) or tokens (speech to text) per second.

``--smoke`` runs the same code end to end on tiny checkpoints with small bursts: a dry run on a CPU in about
a minute. A section that fails is recorded with its error and the next one runs. Checkpoints already
written under ``--checkpoints`` are reused, so a long run can be split into several commands by section.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch

from speechserve.bench import golden, machine
from speechserve.bench.offline import TEXT_500, sweep_point
from speechserve.bench.transcription import text_point

T = TypeVar("T")
SECTIONS = ("machine", "golden", "tts", "capacity", "families")
GOLDEN_ROOT = Path(__file__).resolve().parents[3] / "tests" / "golden"
"""The repository's golden cases (an editable install or a checkout run with ``PYTHONPATH=src``)."""


@dataclass(frozen=True)
class Plan:
    """What one run measures. :data:`FULL` and :data:`SMOKE` are the two starting points."""

    preset: str = "full"
    concurrency: tuple[int, ...] = (1, 16, 32, 64)
    frames: int = 125
    """Frames per TTS request (10 s of audio), END ignored."""
    eager: tuple[bool, ...] = (False, True)
    """Engine modes of the TTS and capacity sections: with CUDA graphs, then without."""
    isq: tuple[str | None, ...] = (None, "int8", "int4", "fp8")
    capacity: tuple[int, ...] = (1, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    capacity_frames: int = 100
    family_concurrency: tuple[int, ...] = (1, 32)
    family_frames: int = 430
    """Frames per request of the other speech families (Dia: 5 s at 86 frames/s)."""
    audio_seconds: float = 10.0
    """Seconds of audio per transcription request."""
    max_tokens: int = 128
    repeats: int = 1
    max_seq_len: int = 1024
    golden_cases: int | None = None
    """Cases per golden family (None: all), each from its first layout only when set."""
    copy_bytes: int | None = None
    sections: tuple[str, ...] = SECTIONS


FULL = Plan()
SMOKE = Plan(
    preset="tiny", concurrency=(1, 2), frames=6, capacity=(1, 2), capacity_frames=6, family_concurrency=(1, 2),
    family_frames=24, audio_seconds=1.0, max_tokens=6, golden_cases=1, copy_bytes=32 << 20,
)  # fmt: skip


@dataclass
class Run:
    """One `bench gpu` invocation: where it writes, on which device, and what it has measured so far."""

    plan: Plan
    out: Path
    device: torch.device
    dtype: torch.dtype
    checkpoints: Path
    golden_root: Path = GOLDEN_ROOT
    copy_gb_per_s: float | None = None
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _speech: Any = None
    """The main speech model in full precision, shared by the tts and capacity sections."""

    # ---- output ----------------------------------------------------------------------------------------
    def emit(self, section: str, record: dict[str, Any]) -> None:
        record = {"section": section, **record}
        self.sections.setdefault(section, []).append(record)
        print(json.dumps(record, default=str), flush=True)

    def save(self, section: str, seconds: float) -> Path:
        path = self.out / f"{section}.json"
        body = {"section": section, "seconds": seconds, "plan": asdict(self.plan), "machine": self.hardware,
                "records": self.sections.get(section, [])}  # fmt: skip
        path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
        return path

    @property
    def hardware(self) -> dict[str, Any]:
        return {**machine.describe(self.device), "dtype": str(self.dtype).removeprefix("torch.")}

    # ---- checkpoints -----------------------------------------------------------------------------------
    def checkpoint(self, family: Any) -> Path:
        """``family``'s random checkpoint of the plan's preset, written once (a marker says it is whole)."""
        directory = self.checkpoints / f"{family.name}-{self.plan.preset}"
        marker = directory.with_suffix(".done")
        if not marker.exists():
            if directory.exists():  # a write that was interrupted
                shutil.rmtree(directory)
            print(
                f"# writing a random {self.plan.preset} {family.name} checkpoint to {directory}",
                file=sys.stderr,
            )
            family.write_random(directory, preset=self.plan.preset, seed=0)
            marker.touch()
        return directory

    def load(self, family: Any, isq: str | None = None) -> Any:
        import speechserve

        return speechserve.load(self.checkpoint(family), self.device, self.dtype, isq=isq)

    def attempt(self, section: str, context: dict[str, Any], work: Callable[[], T]) -> T | None:
        """Run one part of a section and return its result; a failure is recorded with ``context`` (None is
        returned) and the section goes on."""
        try:
            return work()
        except Exception as exc:  # out of memory, a quantization mode this build cannot run, …
            self.emit(section, {**context, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"})
            return None
        finally:
            machine.release(self.device)

    def speech_model(self) -> Any:
        if self._speech is None:
            self._speech = self.load(main_speech_family())
        return self._speech


def main_speech_family() -> Any:
    """The family the tts and capacity sections measure: the first speech family that writes checkpoints."""
    from speechserve import registry

    return next(f for f in registry.families() if f.write_random is not None and "speech" in f.capabilities)


def other_families() -> Iterator[Any]:
    from speechserve import registry

    main = main_speech_family()
    yield from (f for f in registry.families() if f.write_random is not None and f is not main)


def isq_refusal(mode: str, device: torch.device, dtype: torch.dtype) -> str | None:
    """Why ``mode`` cannot run here (None: it can), found on a small Linear before any model is loaded."""
    from speechserve.models.quantize import quantize

    probe = torch.nn.Sequential(torch.nn.Linear(256, 256)).to(device, dtype)
    try:
        quantize(probe, mode)
    except Exception as exc:  # UnsupportedFeature, or whatever a missing/partial torchao raises
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


# ---- sections -----------------------------------------------------------------------------------------------
def section_machine(run: Run) -> None:
    run.copy_gb_per_s = machine.copy_gb_per_s(run.device, run.plan.copy_bytes)
    run.emit(
        "machine", {**run.hardware, "copy_gb_per_s": run.copy_gb_per_s, "peak_rss_mb": machine.peak_rss_mb()}
    )


def section_golden(run: Run) -> None:
    import tempfile

    if not run.golden_root.is_dir():
        run.emit("golden", {"error": f"no golden cases at {run.golden_root} (run from a checkout)"})
        return
    cases = golden.mirror(run.golden_root, Path(tempfile.mkdtemp(prefix="speechserve-golden-")))
    if run.plan.golden_cases is not None:  # the smallest cases of each family (the quickest to run)
        per_family: dict[str, list[Path]] = {}
        for case in sorted(cases, key=lambda c: (c / "expected.safetensors").stat().st_size):
            per_family.setdefault(case.parent.name, []).append(case)
        cases = [c for family in per_family.values() for c in family[: run.plan.golden_cases]]
    for case in cases:
        for record in golden.run_reference([case], first_layout_only=run.plan.golden_cases is not None):
            record.pop("errors")  # per-key detail stays out of the printed line; failures are listed
            run.emit("golden", {"kind": "reference", **record})
    for case in filter(golden.is_tts_case, cases):
        for dtype in (torch.float32, torch.bfloat16):
            name = str(dtype).removeprefix("torch.")
            context = {"kind": "device", "family": case.parent.name, "case": case.name, "dtype": name}
            record = run.attempt("golden", context, partial(golden.tts_on_device, case, run.device, dtype))
            if record is not None:
                run.emit("golden", {"kind": "device", **record})


def _context(run: Run, **extra: Any) -> dict[str, Any]:
    return {"preset": run.plan.preset, "dtype": str(run.dtype).removeprefix("torch."),
            "copy_gb_per_s": run.copy_gb_per_s, **extra}  # fmt: skip


def section_tts(run: Run) -> None:
    family = main_speech_family()
    for mode in run.plan.isq:
        refused = isq_refusal(mode, run.device, run.dtype) if mode else None
        context = _context(run, family=family.name, isq=mode)
        if refused:
            run.emit("tts", {**context, "error": refused})
        else:
            run.attempt("tts", context, partial(_tts_mode, run, family, mode, context))


def _tts_mode(run: Run, family: Any, mode: str | None, context: dict[str, Any]) -> None:
    plan = run.plan
    pipe = run.speech_model() if mode is None else run.load(family, mode)
    for eager in plan.eager:
        for c in plan.concurrency:
            point, graphs = sweep_point(pipe, c, plan.frames, TEXT_500, plan.max_seq_len, eager, plan.repeats)
            run.emit(
                "tts",
                point.record(**context, eager=eager, cuda_graphs=graphs, frames_per_request=plan.frames),
            )


def section_capacity(run: Run) -> None:
    plan, pipe = run.plan, run.speech_model()
    for eager in plan.eager:
        held, missed = None, None
        for c in plan.capacity:
            context = _context(run, eager=eager, concurrency=c, frames_per_request=plan.capacity_frames)
            work = partial(sweep_point, pipe, c, plan.capacity_frames, TEXT_500, plan.max_seq_len, eager)
            result = run.attempt("capacity", context, work)
            if result is None:  # e.g. the KV cache of c streams does not fit
                missed = c
                break
            point, graphs = result
            run.emit("capacity", point.record(**context, cuda_graphs=graphs, held=point.late_streams == 0))
            if point.late_streams:
                missed = c
                break
            held = c
        run.emit("capacity", _context(run, eager=eager, streams_held_at_real_time=held, first_miss_at=missed))


def section_families(run: Run) -> None:
    for family in other_families():
        context = _context(run, family=family.name)
        run.attempt("families", context, partial(_family, run, family, context))


def _family(run: Run, family: Any, context: dict[str, Any]) -> None:
    plan, pipe = run.plan, run.load(family)
    for c in plan.family_concurrency:
        if "speech" in family.capabilities:
            point, graphs = sweep_point(pipe, c, plan.family_frames, TEXT_500, plan.max_seq_len)
            run.emit("families", point.record(**context, unit="frames", cuda_graphs=graphs))
        else:
            tp = text_point(pipe, c, plan.audio_seconds, plan.max_tokens, plan.max_seq_len, plan.repeats)
            run.emit("families", tp.record(**context, unit="tokens", audio_seconds=plan.audio_seconds))


RUNNERS: dict[str, Callable[[Run], None]] = {
    "machine": section_machine,
    "golden": section_golden,
    "tts": section_tts,
    "capacity": section_capacity,
    "families": section_families,
}


def run_all(run: Run) -> dict[str, Any]:
    """Every section of the plan, in order; each saved as it ends. Returns (and saves) the summary."""
    run.out.mkdir(parents=True, exist_ok=True)
    files, seconds, failed = {}, {}, {}
    if "machine" not in run.plan.sections:  # every GB/s figure is shown next to the copy bandwidth
        run.copy_gb_per_s = machine.copy_gb_per_s(run.device, run.plan.copy_bytes)
    for name in run.plan.sections:
        start = time.perf_counter()
        try:
            RUNNERS[name](run)
        except Exception as exc:  # recorded; the next section still runs
            failed[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            run.emit(name, {"error": failed[name]})
        seconds[name] = time.perf_counter() - start
        files[name] = run.save(name, seconds[name]).name
    gpu = [r["peak_gpu_mb"] for rs in run.sections.values() for r in rs if r.get("peak_gpu_mb") is not None]
    summary = {"files": files, "seconds": seconds, "failed": failed, "plan": asdict(run.plan),
               "machine": run.hardware, "copy_gb_per_s": run.copy_gb_per_s, "peak_rss_mb": machine.peak_rss_mb(),
               "peak_gpu_mb": max(gpu, default=None)}  # fmt: skip
    (run.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return summary


def plan_from(smoke: bool, **overrides: Any) -> Plan:
    """:data:`SMOKE` or :data:`FULL` with the options that were given (None: keep the plan's)."""
    return replace(SMOKE if smoke else FULL, **{k: v for k, v in overrides.items() if v is not None})
