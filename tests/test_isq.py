"""In-situ quantization: which layers it touches, what it refuses, and how close int8 stays to fp32.

Agreement of ids/codes is a property of real widths (see bench/RESULTS.md): on the tiny random golden
checkpoints (dim 32–64, logits whose top-1/top-2 gaps are ~1e-3) int8 rounding flips greedy ids and codes,
so no tiny case keeps its golden ids under int8 — measured, and the reason these tests compare hidden states
and logits instead.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import speechserve
from speechserve.errors import UnsupportedFeature
from speechserve.models.quantize import quantize, weight_bytes


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().float(), b.flatten().float(), dim=0))


def test_tts_int8_quantizes_the_transformers_and_keeps_the_codec(tiny_checkpoint, tiny_tts) -> None:
    q = speechserve.load(tiny_checkpoint, device="cpu", isq="int8")
    assert type(tiny_tts.model.backbone.layers[0].attention.wq) is nn.Linear
    assert type(q.model.backbone.layers[0].attention.wq).__module__.startswith("torch.ao.nn.quantized")
    codec = [m for n, m in q.model.named_modules() if n.startswith("audio_tokenizer")]
    assert not any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in codec)  # kept in fp32
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
    with pytest.raises(ValueError, match="int8, int4, fp8"):
        quantize(nn.Sequential(nn.Linear(8, 8)), "int3")
