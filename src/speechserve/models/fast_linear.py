"""Fast small-batch matmuls on CPU, in one place, chosen by measurement.

The lesson (measured on the project's 2-core AMD EPYC with the MKL torch build, one 9216×3072 fp32 weight):
``F.linear`` on 2–8 rows costs about as much as that many single-row products (1 row 8.5 ms, 6 rows 51 ms),
while the same 6 rows as ``(W @ x.T).T`` take 13 ms — MKL picks a poor kernel for a short, wide left
operand — and our small-row kernel (:mod:`speechserve.models.small_m`, which reads the weight once) 9.6 ms,
against 7.1 ms for one row. Every batched decode step and the flow head's CFG batch (2 × 3 rows per sequence)
fall into that cliff. Which product is fastest depends on the machine, the BLAS, the dtype, the thread count
and the shape, so nothing is assumed: :func:`install` times the forms (``FORMS``: ``F.linear``, transposed,
and the kernel where it can be built and takes the dtype) alternately for each distinct weight shape at the
row counts the model will see (1 … ``max_rows``) and patches each ``nn.Linear`` to take the fastest per row
count. Results are cached per machine and settings (``~/.cache/speechserve/matmul-*.json``), so only the
first load pays for the measurement. Outputs equal ``F.linear`` up to summation order (tested within 1e-5).

Applied from outside the model files (gpt-fast's ``apply_tp`` style); nothing is patched on CUDA.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models import small_m

MIN_WEIGHT_ELEMENTS = 1 << 20
"""Smaller weights are left to ``F.linear``: the cliff is a bandwidth effect of large weights, while for small
ones the call is dispatch-bound and the extra transpose copy only costs (measured on the tiny random models:
batching at concurrency 8 fell from 4.6× to 3.4× of concurrency 1 when they were patched)."""

ROW_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
"""Row counts measured; a count between two buckets uses the lower bucket's choice."""


def transposed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` computed as ``(W @ x.T).T`` (x: [..., in] → [..., out])."""
    flat = x.reshape(-1, x.shape[-1])
    out = torch.mm(weight, flat.T).T.contiguous()
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0])


FORMS = ("linear", "transposed", "small_m")
"""The products a row count can be dispatched to; ``linear`` (``F.linear``) is the default."""

SWITCH_MARGIN = 0.9
"""Another form replaces ``F.linear`` only when it is more than 10 % faster: no flip-flopping on noise."""


def _fastest_seconds(*fns) -> list[float]:  # type: ignore[no-untyped-def]
    """The fastest of ``repeats`` calls of each function, called in turn (a, b, …, a, b, …); the last
    positional argument is ``repeats``.

    Alternating and taking the minimum keeps the choice steady on a machine shared with other work: load
    that comes and goes slows every form alike, and the fastest call is the one least disturbed (measured on
    the shared 2-core EPYC: with a block of medians per form, the choices for one shape flipped from row count
    to row count)."""
    *calls, repeats = fns
    for fn in calls:  # warm-up
        fn()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for fn, out in zip(calls, times, strict=True):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [min(t) for t in times]


def _forms_for(weight: torch.Tensor) -> dict[str, object]:
    forms: dict[str, object] = {
        "linear": lambda x: F.linear(x, weight),
        "transposed": lambda x: transposed_linear(x, weight, None),
    }
    if small_m.supports(weight) and small_m.kernel() is not None:
        forms["small_m"] = lambda x: small_m.linear(x, weight, None)
    return forms


@torch.inference_mode()
def measure(weight: torch.Tensor, rows: tuple[int, ...], repeats: int = 5) -> dict[int, str]:
    """For each row count, the fastest form (one of ``FORMS``) for this weight."""
    forms = _forms_for(weight)
    choice = {}
    for n in rows:
        x = torch.randn(n, weight.shape[1], dtype=weight.dtype)
        calls = [lambda f=f, x=x: f(x) for f in forms.values()]
        times = dict(zip(forms, _fastest_seconds(*calls, repeats), strict=True))
        best = min(times, key=times.__getitem__)
        choice[n] = best if times[best] < SWITCH_MARGIN * times["linear"] else "linear"
    return choice


def _cache_path() -> Path:
    key = (
        f"{platform.machine()}-{platform.processor() or 'cpu'}-{torch.__version__}-t{torch.get_num_threads()}"
    )
    root = Path(os.environ.get("SPEECHSERVE_CACHE", Path.home() / ".cache" / "speechserve"))
    return root / f"matmul-v3-{''.join(c if c.isalnum() or c in '.-' else '_' for c in key)}.json"


def _load_cache() -> dict[str, dict[str, str]]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, dict[str, str]]) -> None:
    try:
        path = _cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, sort_keys=True))
    except OSError:  # a read-only home: measure again next time
        pass


class _Dispatch:
    """The per-row-count choice of one weight shape."""

    def __init__(self, choice: dict[int, str]) -> None:
        self.max_rows = max(choice)
        self.table = ["linear"] * (self.max_rows + 1)
        last = "linear"
        for n in range(1, self.max_rows + 1):
            last = choice.get(n, last)
            self.table[n] = last

    def form(self, rows: int) -> str:
        return self.table[rows] if 0 < rows <= self.max_rows else "linear"

    def transposed(self, rows: int) -> bool:
        return self.form(rows) == "transposed"


def _patch(linear: nn.Linear, dispatch: _Dispatch) -> None:
    def forward(x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        form = dispatch.form(rows)
        if form == "small_m" and x.dtype == torch.float32 and small_m.supports(linear.weight):
            return small_m.linear(x, linear.weight, linear.bias)
        if form == "transposed":
            return transposed_linear(x, linear.weight, linear.bias)
        return F.linear(x, linear.weight, linear.bias)

    linear.forward = forward  # type: ignore[method-assign]
    linear.small_batch_dispatch = dispatch  # type: ignore[assignment]


def install(
    model: nn.Module, max_rows: int = 64, *, repeats: int = 5, min_elements: int = MIN_WEIGHT_ELEMENTS
) -> dict[str, dict[int, str]]:
    """Measure (or read from the cache) and patch every large float ``nn.Linear`` of ``model`` on the CPU.

    Returns ``{"out×in dtype": {rows: form}}`` for the shapes found (empty on CUDA)."""
    linears = [m for m in model.modules() if type(m) is nn.Linear and m.weight.device.type == "cpu"]
    linears = [m for m in linears if m.weight.dtype in (torch.float32, torch.bfloat16, torch.float16)]
    linears = [m for m in linears if m.weight.numel() >= min_elements]
    rows = tuple(r for r in ROW_BUCKETS if r <= max_rows) or (1,)
    cache, changed, report = _load_cache(), False, {}
    for linear in linears:
        key = f"{linear.weight.shape[0]}x{linear.weight.shape[1]} {str(linear.weight.dtype).removeprefix('torch.')}"
        known = {int(k): v for k, v in cache.get(key, {}).items() if v in FORMS}
        missing = tuple(r for r in rows if r not in known)
        if missing:
            known |= measure(linear.weight.detach(), missing, repeats)
            cache[key] = {str(k): v for k, v in known.items()}
            changed = True
        choice = {r: known[r] for r in rows}
        if (
            small_m.kernel() is None
        ):  # cached on a run that could build the kernel (or before it was disabled)
            choice = {r: "linear" if v == "small_m" else v for r, v in choice.items()}
        report[key] = choice
        _patch(linear, _Dispatch(choice))
    if changed:
        _save_cache(cache)
    return report
