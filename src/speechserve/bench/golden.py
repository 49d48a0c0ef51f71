"""Golden parity as a benchmark section: every case under ``tests/golden`` run and compared with its
``expected.safetensors`` exactly as the golden tests do, plus Voxtral TTS's cases on the benchmark's device.

- :func:`mirror` lays the cases out ready to run: the large tokenizers the repository does not commit are
  rebuilt beside them (as ``tests/conftest.py`` does for the tests), everything else is linked.
- :func:`run_reference` runs :func:`speechserve.testing.golden.run_case` (fp32 on the CPU, every layout
  of every case) and reports each key's error with the tests' rule: integer tensors exact, float tensors
  max|ours − golden| ≤ 1e-4 · max|golden| with the same non-finite pattern.
- :func:`tts_on_device` runs a Voxtral TTS case through the public SDK on any device and dtype (fp32 with
  TF32 off: the same rule must hold; bf16: how far it agrees — its codes diverge once a rounding flips a
  near-tie, so hidden states and flow states are compared up to the first differing frame, and the codec
  decodes the golden codes so its own error is measured apart).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from speechserve.testing.golden_cases import LAYOUT_DIRS, layouts, mirror  # noqa: F401  (re-exported)

REL_TOL = 1e-4
"""The golden tests' tolerance, relative to the expected tensor's peak."""


# ---- comparing ---------------------------------------------------------------------------------------------
def key_error(got: torch.Tensor, want: torch.Tensor) -> dict[str, Any]:
    """One key against the golden tensor: exact for integers, relative to the peak for floats."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return {"ok": False, "problem": f"shape/dtype {tuple(got.shape)} {got.dtype} vs {tuple(want.shape)} {want.dtype}"}  # fmt: skip
    if not want.dtype.is_floating_point:
        differ = int((got != want).sum())
        return {"ok": differ == 0, "differing": differ}
    finite = torch.isfinite(want)
    if not torch.equal(finite, torch.isfinite(got)):
        return {"ok": False, "problem": "different non-finite pattern"}
    rel = relative_error(got[finite], want[finite]) or 0.0
    return {"ok": rel <= REL_TOL, "rel": rel}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float | None:
    """max|got − want| / max|want| (None when there is nothing to compare)."""
    if want.numel() == 0:
        return None
    peak = want.abs().max().item() or 1.0
    return (got.float() - want.float()).abs().max().item() / peak


def compare(ours: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Every expected key: pass/fail, worst relative error and where."""
    errors = {k: key_error(ours[k], v) if k in ours else {"ok": False, "problem": "missing"} for k, v in expected.items()}  # fmt: skip
    floats = {k: e["rel"] for k, e in errors.items() if "rel" in e}
    worst = max(floats, key=floats.__getitem__, default=None)
    return {
        "ok": all(e["ok"] for e in errors.values()),
        "keys": len(errors),
        "failed": sorted(k for k, e in errors.items() if not e["ok"]),
        "worst_key": worst,
        "worst_rel": floats[worst] if worst else None,
        "errors": errors,
    }


@contextmanager
def no_tf32() -> Iterator[None]:
    """fp32 products in full fp32 (TF32 off for matmuls and cuDNN convolutions), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---- running ------------------------------------------------------------------------------------------------
def run_reference(cases: list[Path], first_layout_only: bool = False) -> list[dict[str, Any]]:
    """``run_case`` (fp32, CPU) on every layout (or the first) of every case, compared key by key."""
    from speechserve.testing.golden import run_case

    records = []
    for case in cases:
        for layout in layouts(case)[:1] if first_layout_only else layouts(case):
            start = time.perf_counter()
            with no_tf32():
                ours = run_case(case, layout) if layout else run_case(case)
            result = compare(ours, load_file(str(case / "expected.safetensors")))
            records.append(
                {"family": case.parent.name, "case": case.name, "layout": layout or "mistral", "device": "cpu",
                 "dtype": "float32", "tf32": False, **result, "seconds": time.perf_counter() - start}
            )  # fmt: skip
    return records


def is_tts_case(case: Path) -> bool:
    """A Voxtral TTS case: one model folder and a tokenizer named in case.json."""
    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    return "model_dir" in meta and "tekken" in meta


@torch.inference_mode()
def tts_on_device(case: Path, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """A Voxtral TTS case through the SDK on ``device`` in ``dtype``, against its golden tensors."""
    import speechserve
    from speechserve.options import SynthesisOptions

    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    want = load_file(str(case / "expected.safetensors"))
    start = time.perf_counter()
    with no_tf32():
        pipe = speechserve.load(case / meta["model_dir"], device, dtype, tokenizer=case / meta["tekken"], fast_matmul=False)  # fmt: skip
        options = SynthesisOptions(
            max_frames=meta["max_frames"], noise=want["noise"], noise_scale=meta.get("noise_scale", 1.0),
            cfg_alpha=meta["cfg_alpha"], n_decoding_steps=meta["n_steps"],
        )  # fmt: skip
        frames = list(pipe.frames(meta["text"], meta["voice"], options))
        n_audio = want["waveform"].numel() // pipe.samples_per_frame
        wave = pipe.model.audio_tokenizer.decode(want["codes"][None, :n_audio].to(device))[0].float().cpu()
    codes = torch.stack([f.codes.cpu() for f in frames]).to(torch.int64)
    n = min(len(codes), len(want["codes"]))
    same = (codes[:n] == want["codes"][:n]).all(dim=1)
    agree = int(same.long().cumprod(0).sum())  # frames identical before the first difference
    upto = min(agree + 1, n)  # the hidden state of the first differing frame still had identical inputs
    hidden = torch.stack([f.hidden.float().cpu() for f in frames])
    flow_x = torch.stack([f.flow_x.float().cpu() for f in frames])
    rel = {
        "prefill_hidden": relative_error(hidden[0], want["prefill_hidden"]),
        "hidden": relative_error(hidden[:upto], want["hidden"][:upto]),
        "flow_x": relative_error(flow_x[:agree], want["flow_x"][:agree]),
        "waveform_from_golden_codes": relative_error(wave, want["waveform"]),
    }
    identical = agree == n == len(want["codes"]) == len(codes)
    exact = identical and all(v is not None and v <= REL_TOL for v in rel.values())
    return {
        "family": case.parent.name, "case": case.name, "device": str(device),
        "dtype": str(dtype).removeprefix("torch."), "tf32": False,
        "ok": exact if dtype == torch.float32 else None,  # bf16 has no pass mark: its agreement is the figure
        "frames": len(codes), "golden_frames": len(want["codes"]), "codes_identical_frames": agree,
        "codes_equal_fraction": float(same.float().mean()) if n else 0.0, "rel": rel,
        "seconds": time.perf_counter() - start,
    }  # fmt: skip
