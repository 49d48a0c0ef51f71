"""In-situ quantization: which layers it touches, what it refuses, and how close int8 stays to fp32.

Agreement of ids/codes is a property of real widths (see bench/RESULTS.md): on the tiny random golden
checkpoints (dim 32–64, logits whose top-1/top-2 gaps are ~1e-3) int8 rounding flips greedy ids and codes,
so no tiny case keeps its golden ids under int8 — measured, and the reason these tests compare hidden states
and logits instead.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import speechserve
from speechserve.errors import UnsupportedFeature
from speechserve.models import quantize as quantize_module
from speechserve.models import small_m
from speechserve.models.quantize import (
    Int8Linear,
    is_int8,
    quantize,
    weight_bytes,
    weight_parts,
)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().float(), b.flatten().float(), dim=0))


def test_tts_int8_quantizes_the_transformers_and_keeps_the_codec(tiny_checkpoint, tiny_tts) -> None:
    q = speechserve.load(tiny_checkpoint, device="cpu", isq="int8")
    assert type(tiny_tts.model.backbone.layers[0].attention.wq) is nn.Linear
    assert type(q.model.backbone.layers[0].attention.wq) is Int8Linear  # the kernel path (it builds here)
    codec = [m for n, m in q.model.named_modules() if n.startswith("audio_tokenizer")]
    assert not any(is_int8(m) for m in codec)  # kept in fp32
    assert any(type(m) is nn.Linear for n, m in q.model.named_modules() if n.startswith("audio_tokenizer"))
    _, embeds = tiny_tts.prompt("Hello there, quantized world.", "casual_male")
    runner_h = tiny_tts.model.backbone(embeds[None], tiny_tts.model.backbone.new_cache(1, 256), 0)
    q_h = q.model.backbone(embeds[None], q.model.backbone.new_cache(1, 256), 0)
    assert _cos(runner_h, q_h) > 0.99
    chunk = q.generate("Hello there.", "casual_male", speechserve.SynthesisOptions(seed=0, max_frames=6))
    assert chunk.samples.size and bool(torch.isfinite(torch.from_numpy(chunk.samples)).all())


def test_asr_int8_logits_stay_close(tiny_asr_checkpoint, tiny_asr) -> None:
    q = speechserve.load(tiny_asr_checkpoint, device="cpu", isq="int8")
    hidden = torch.randn(3, tiny_asr.model.cfg.decoder.dim, generator=torch.Generator().manual_seed(0))
    assert _cos(tiny_asr.model.logits(hidden), q.model.logits(hidden)) > 0.99
    assert _cos(tiny_asr.model.logits(hidden[0]), q.model.logits(hidden[0])) > 0.99  # one vector works too


def test_weights_shrink_about_fourfold_on_the_quantized_layers() -> None:
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256))
    before = weight_bytes(model)
    assert quantize(model, "int8") == ["0", "2"]
    assert before / weight_bytes(model) > 3.5


def test_modes_refused_where_they_cannot_run() -> None:
    with pytest.raises(UnsupportedFeature, match="CUDA"):
        quantize(nn.Sequential(nn.Linear(8, 8)), "int4")
    with pytest.raises(UnsupportedFeature, match="CUDA"):
        quantize(nn.Sequential(nn.Linear(8, 8)), "fp8")
    with pytest.raises(ValueError, match="int8, int8-dynamic, int4, fp8"):
        quantize(nn.Sequential(nn.Linear(8, 8)), "int3")


@pytest.mark.parametrize("rows", [1, 3, 6, 16, 17, 40])
def test_int8_linear_computes_its_dequantized_weight(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel rows (≤ KERNEL_MAX_ROWS) and prompt rows (dequantize + F.linear) give the product with the
    dequantized weight: within 1e-5 on the float path, within 1e-3 on the kernel's, which rounds x to int16
    per row (measured: ~1.5e-4 of the largest output); a vector input works as nn.Linear's does."""
    monkeypatch.setattr(quantize_module, "KERNEL_MAX_ROWS", 16)  # so both paths are taken
    gen = torch.Generator().manual_seed(rows)
    linear = nn.Linear(72, 40)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(40, 72, generator=gen))
    values, scales, _ = weight_parts(linear.weight)
    q = Int8Linear(values, scales, linear.bias)
    x = torch.randn(2, rows, 72, generator=gen)
    want = torch.nn.functional.linear(x, values.float() * scales.float()[:, None], linear.bias)
    tol = 1e-3 if 2 * rows <= 16 else 1e-5
    assert (q(x) - want).abs().max() <= tol * want.abs().max()
    assert (q(x[0, 0]) - want[0, 0]).abs().max() <= 1e-3 * want.abs().max()


def test_weight_only_int8_is_closer_to_fp32_than_fbgemms_dynamic_int8() -> None:
    """Why ``int8`` is weight-only and fbgemm's fast path is ``int8-dynamic``: the same int8 weights, but
    activations rounded to int16 per row rather than 7 bits per tensor."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(1024, 512, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(512, 1024, generator=gen) / 32)
    x = torch.randn(6, 1024, generator=gen)
    with torch.no_grad():
        want = model(x)
    ours, dynamic = (copy.deepcopy(model) for _ in range(2))
    quantize(ours, "int8")
    quantize(dynamic, "int8-dynamic")
    assert type(ours[0]) is Int8Linear and is_int8(dynamic[0]) and type(dynamic[0]) is not Int8Linear
    with torch.no_grad():
        err = {
            n: float((m(x) - want).norm() / want.norm()) for n, m in (("ours", ours), ("dynamic", dynamic))
        }
    assert err["ours"] < 0.6 * err["dynamic"] and err["ours"] < 0.01, err
    # the same integers either way
    assert torch.equal(ours[0].values, dynamic[0].weight().int_repr())


def test_int8_falls_back_to_int8_dynamic_without_the_kernel(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(small_m, "kernel", lambda: None)
    model = nn.Sequential(nn.Linear(64, 32))
    with caplog.at_level("WARNING"):
        quantize(model, "int8")
    assert is_int8(model[0]) and type(model[0]) is not Int8Linear
    assert "using int8-dynamic" in caplog.text


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 7, 13])
def test_int8_kernel_on_shapes_off_its_blocks(rows: int) -> None:
    """33 outputs (not a multiple of the 8-row blocks), 77 inputs (not of the 16-input chunks): the packing
    round-trips and the padding contributes nothing."""
    gen = torch.Generator().manual_seed(rows)
    values = torch.randint(-128, 128, (33, 77), generator=gen, dtype=torch.int8)
    assert torch.equal(small_m.unpack_int8(small_m.pack_int8(values), 33, 77), values)
    scales = torch.rand(33, generator=gen) / 100
    q = Int8Linear(values, scales, None)
    x = torch.randn(rows, 77, generator=gen)
    want = torch.nn.functional.linear(x, values.float() * scales[:, None])
    assert (q(x) - want).abs().max() <= 1e-3 * want.abs().max()
