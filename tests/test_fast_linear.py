"""The small-batch matmul path equals ``F.linear`` (within 1e-5), dispatches by row count, and is what a
CPU load installs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models import fast_linear


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 64), (3, 5, 64), (48, 64)])
def test_transposed_product_equals_linear(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(96, 64, generator=gen).to(dtype)
    b = torch.randn(96, generator=gen).to(dtype)
    x = torch.randn(*shape, generator=gen).to(dtype)
    got, want = fast_linear.transposed_linear(x, w, b), F.linear(x, w, b)
    assert got.shape == want.shape and got.is_contiguous()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert (got.float() - want.float()).abs().max() <= tol * want.float().abs().max()


def test_install_patches_by_row_count(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_CACHE", str(tmp_path))
    model = nn.Sequential(nn.Linear(64, 96), nn.Linear(96, 32, bias=False))
    calls = []
    monkeypatch.setattr(fast_linear, "measure", lambda w, rows, repeats=5: calls.append(rows) or {r: r in (2, 3, 4) for r in rows})  # fmt: skip
    report = fast_linear.install(model, max_rows=8, min_elements=0)
    assert set(report) == {"96x64 float32", "32x96 float32"} and len(calls) == 2
    assert report["96x64 float32"] == {1: False, 2: True, 3: True, 4: True, 6: False, 8: False}
    disp = model[0].small_batch_dispatch
    assert [disp.transposed(n) for n in range(1, 10)] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    x = torch.randn(4, 64)
    assert (
        model(x) - nn.functional.linear(F.linear(x, model[0].weight, model[0].bias), model[1].weight)
    ).abs().max() < 1e-5
    fast_linear.install(nn.Sequential(nn.Linear(64, 96)), max_rows=8, min_elements=0)  # same shape: cached
    assert len(calls) == 2


def test_only_large_weights_are_patched(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_CACHE", str(tmp_path))
    monkeypatch.setattr(fast_linear, "measure", lambda w, rows, repeats=5: dict.fromkeys(rows, True))
    model = nn.Sequential(nn.Linear(1024, 1024, bias=False), nn.Linear(64, 64))
    assert list(fast_linear.install(model, max_rows=4)) == ["1024x1024 float32"]
    assert hasattr(model[0], "small_batch_dispatch") and not hasattr(model[1], "small_batch_dispatch")


def test_cpu_load_leaves_the_tiny_models_dispatch_bound_linears_alone(tiny_tts) -> None:
    linears = [m for m in tiny_tts.model.modules() if type(m) is nn.Linear]
    assert linears and not any(hasattr(m, "small_batch_dispatch") for m in linears)


def test_the_two_forms_are_timed_alternately_and_the_fastest_call_counts() -> None:
    calls: list[str] = []
    a, b = (lambda: calls.append("a")), (lambda: calls.append("b"))
    fast_a, fast_b = fast_linear._fastest_seconds(a, b, repeats=3)
    assert calls == ["a", "b"] * 4 and 0 <= fast_a < 1 and 0 <= fast_b < 1  # a warm-up pair, then 3 pairs


def test_measure_on_a_real_weight_gives_one_choice_per_row_count() -> None:
    w = torch.randn(256, 128)
    assert set(fast_linear.measure(w, (1, 4, 8), repeats=2)) == {1, 4, 8}
