"""Fast small-batch matmuls on CPU, in one place, chosen by measurement.

The lesson (measured on the project's 2-core AMD EPYC with the MKL torch build, one 9216×3072 fp32 weight):
``F.linear`` on 2–8 rows costs about as much as that many single-row products (1 row 8.5 ms, 6 rows 51 ms),
while the same 6 rows as ``(W @ x.T).T`` take 13 ms — MKL picks a poor kernel for a short, wide left
operand. Every batched decode step and the flow head's CFG batch (2 × 3 rows per sequence) fall into that
cliff. Which product is faster depends on the machine, the BLAS, the dtype, the thread count and the shape,
so nothing is assumed: :func:`install` times both forms for each distinct weight shape at the row counts the
model will see (1 … ``max_rows``) and patches each ``nn.Linear`` to take the faster one per row count.
Results are cached per machine and settings (``~/.cache/speechserve/matmul-*.json``), so only the first load
pays for the measurement. Outputs equal ``F.linear`` up to summation order (tested within 1e-5).

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


def _fastest_seconds(a, b, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The fastest of ``repeats`` calls of each of two functions, called alternately (a, b, a, b, …).

    Alternating and taking the minimum keeps the choice steady on a machine shared with other work: load
    that comes and goes slows both forms alike, and the fastest call is the one least disturbed (measured on
    the shared 2-core EPYC: with a block of medians per form, the choices for one shape flipped from row count
    to row count)."""
    a(), b()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((a, times[0]), (b, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


@torch.inference_mode()
def measure(weight: torch.Tensor, rows: tuple[int, ...], repeats: int = 5) -> dict[int, bool]:
    """For each row count: True when ``(W @ x.T).T`` beat ``F.linear`` by more than 10 %."""
    choice = {}
    for n in rows:
        x = torch.randn(n, weight.shape[1], dtype=weight.dtype)
        plain, transposed = _fastest_seconds(
            lambda x=x: F.linear(x, weight), lambda x=x: transposed_linear(x, weight, None), repeats
        )
        choice[n] = transposed < 0.9 * plain
    return choice


def _cache_path() -> Path:
    key = (
        f"{platform.machine()}-{platform.processor() or 'cpu'}-{torch.__version__}-t{torch.get_num_threads()}"
    )
    root = Path(os.environ.get("SPEECHSERVE_CACHE", Path.home() / ".cache" / "speechserve"))
    return root / f"matmul-v2-{''.join(c if c.isalnum() or c in '.-' else '_' for c in key)}.json"


def _load_cache() -> dict[str, dict[str, bool]]:
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict[str, dict[str, bool]]) -> None:
    try:
        path = _cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, sort_keys=True))
    except OSError:  # a read-only home: measure again next time
        pass


class _Dispatch:
    """The per-row-count choice of one weight shape."""

    def __init__(self, choice: dict[int, bool]) -> None:
        self.max_rows = max(choice)
        self.table = [False] * (self.max_rows + 1)
        last = False
        for n in range(1, self.max_rows + 1):
            last = choice.get(n, last)
            self.table[n] = last

    def transposed(self, rows: int) -> bool:
        return rows <= self.max_rows and self.table[rows]


def _patch(linear: nn.Linear, dispatch: _Dispatch) -> None:
    def forward(x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        if dispatch.transposed(rows):
            return transposed_linear(x, linear.weight, linear.bias)
        return F.linear(x, linear.weight, linear.bias)

    linear.forward = forward  # type: ignore[method-assign]
    linear.small_batch_dispatch = dispatch  # type: ignore[assignment]


def install(
    model: nn.Module, max_rows: int = 64, *, repeats: int = 5, min_elements: int = MIN_WEIGHT_ELEMENTS
) -> dict[str, dict[int, bool]]:
    """Measure (or read from the cache) and patch every large float ``nn.Linear`` of ``model`` on the CPU.

    Returns ``{"out×in dtype": {rows: uses_transposed}}`` for the shapes found (empty on CUDA)."""
    linears = [m for m in model.modules() if type(m) is nn.Linear and m.weight.device.type == "cpu"]
    linears = [m for m in linears if m.weight.dtype in (torch.float32, torch.bfloat16, torch.float16)]
    linears = [m for m in linears if m.weight.numel() >= min_elements]
    rows = tuple(r for r in ROW_BUCKETS if r <= max_rows) or (1,)
    cache, changed, report = _load_cache(), False, {}
    for linear in linears:
        key = f"{linear.weight.shape[0]}x{linear.weight.shape[1]} {str(linear.weight.dtype).removeprefix('torch.')}"
        known = {int(k): v for k, v in cache.get(key, {}).items()}
        missing = tuple(r for r in rows if r not in known)
        if missing:
            known |= measure(linear.weight.detach(), missing, repeats)
            cache[key] = {str(k): v for k, v in known.items()}
            changed = True
        choice = {r: known[r] for r in rows}
        report[key] = choice
        _patch(linear, _Dispatch(choice))
    if changed:
        _save_cache(cache)
    return report
