"""The small-batch matmul paths (transposed product, our small-row kernel) equal ``F.linear`` (within 1e-5),
dispatch by row count, and are what a CPU load installs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models import fast_linear, small_m


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

    def fake_measure(w, rows, repeats=5):  # type: ignore[no-untyped-def]
        calls.append(rows)
        return {r: {2: "transposed", 3: "small_m", 4: "small_m"}.get(r, "linear") for r in rows}

    monkeypatch.setattr(fast_linear, "measure", fake_measure)
    report = fast_linear.install(model, max_rows=8, min_elements=0)
    assert set(report) == {"96x64 float32", "32x96 float32"} and len(calls) == 2
    want = {1: "linear", 2: "transposed", 3: "small_m", 4: "small_m", 6: "linear", 8: "linear"}
    assert report["96x64 float32"] == want
    disp = model[0].small_batch_dispatch
    forms = ["linear", "transposed", "small_m", "small_m", "small_m", "linear", "linear", "linear", "linear"]
    assert [disp.form(n) for n in range(1, 10)] == forms  # 5 rows take 4's choice; past max_rows: F.linear
    for rows in (1, 2, 3, 4, 5, 9):
        x = torch.randn(rows, 64)
        want_y = F.linear(F.linear(x, model[0].weight, model[0].bias), model[1].weight)
        assert (model(x) - want_y).abs().max() < 1e-5
    fast_linear.install(nn.Sequential(nn.Linear(64, 96)), max_rows=8, min_elements=0)  # same shape: cached
    assert len(calls) == 2


def test_a_cached_kernel_choice_falls_back_to_linear_where_the_kernel_is_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_CACHE", str(tmp_path))
    monkeypatch.setattr(fast_linear, "measure", lambda w, rows, repeats=5: dict.fromkeys(rows, "small_m"))
    monkeypatch.setattr(small_m, "kernel", lambda: None)
    model = nn.Sequential(nn.Linear(64, 96))
    assert set(fast_linear.install(model, max_rows=4, min_elements=0)["96x64 float32"].values()) == {"linear"}
    x = torch.randn(3, 64)
    assert torch.equal(model(x), F.linear(x, model[0].weight, model[0].bias))


def test_the_kernel_builds_on_this_machine() -> None:
    """CI's machines have AVX2 and FMA, and the test command installs g++ where it is missing: the kernel
    must be there, or every real-width figure in bench/RESULTS.md would be measured without it."""
    assert small_m._cpu_has_avx2_fma()
    assert small_m.kernel() is not None


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 6, 7, 8, 11, 12, 13, 25])
@pytest.mark.parametrize(("out", "inp"), [(96, 64), (33, 77), (1, 8)])
def test_the_small_row_kernel_equals_linear(rows: int, out: int, inp: int) -> None:
    """Every row count (one pass of ≤ 12 rows, several passes above), odd outputs (the 2-row blocks' tail),
    inputs not a multiple of 8 (the vector loop's tail), bias and leading dimensions."""
    gen = torch.Generator().manual_seed(rows * 1000 + out)
    w = torch.randn(out, inp, generator=gen)
    b = torch.randn(out, generator=gen)
    x = torch.randn(rows, inp, generator=gen)
    for bias in (None, b):
        got, want = small_m.linear(x, w, bias), F.linear(x, w, bias)
        assert got.shape == want.shape
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    x3 = x.reshape(1, rows, inp).expand(2, rows, inp)  # not contiguous
    assert (small_m.linear(x3, w, b) - F.linear(x3, w, b)).abs().max() <= 1e-5 * F.linear(
        x3, w, b
    ).abs().max()


def test_the_kernel_is_off_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_SMALL_M", "0")
    small_m.kernel.cache_clear()
    try:
        assert small_m.kernel() is None
        assert "small_m" not in fast_linear._forms_for(torch.randn(8, 8))
    finally:
        monkeypatch.delenv("SPEECHSERVE_SMALL_M")
        small_m.kernel.cache_clear()
    assert small_m.kernel() is not None and "small_m" in fast_linear._forms_for(torch.randn(8, 8))


def test_a_failed_build_is_reported_not_raised(tmp_path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("SPEECHSERVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    small_m.kernel.cache_clear()
    try:
        with caplog.at_level("WARNING"):
            assert small_m.kernel() is None
        assert "small-row kernel not used" in caplog.text
    finally:
        small_m.kernel.cache_clear()


def test_only_large_weights_are_patched(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_CACHE", str(tmp_path))
    monkeypatch.setattr(fast_linear, "measure", lambda w, rows, repeats=5: dict.fromkeys(rows, "transposed"))
    model = nn.Sequential(nn.Linear(1024, 1024, bias=False), nn.Linear(64, 64))
    assert list(fast_linear.install(model, max_rows=4)) == ["1024x1024 float32"]
    assert hasattr(model[0], "small_batch_dispatch") and not hasattr(model[1], "small_batch_dispatch")


def test_cpu_load_leaves_the_tiny_models_dispatch_bound_linears_alone(tiny_tts) -> None:
    linears = [m for m in tiny_tts.model.modules() if type(m) is nn.Linear]
    assert linears and not any(hasattr(m, "small_batch_dispatch") for m in linears)


def test_the_forms_are_timed_alternately_and_the_fastest_call_counts() -> None:
    calls: list[str] = []
    a, b, c = (lambda: calls.append("a")), (lambda: calls.append("b")), (lambda: calls.append("c"))
    times = fast_linear._fastest_seconds(a, b, c, 3)
    assert (
        calls == ["a", "b", "c"] * 4 and len(times) == 3 and all(0 <= t < 1 for t in times)
    )  # warm-up, 3 turns


def test_measure_on_a_real_weight_gives_one_choice_per_row_count() -> None:
    w = torch.randn(256, 128)
    choice = fast_linear.measure(w, (1, 4, 8), repeats=2)
    assert set(choice) == {1, 4, 8} and set(choice.values()) <= set(fast_linear.FORMS)
