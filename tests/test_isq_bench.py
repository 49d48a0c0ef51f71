"""The ISQ benchmarks' own logic: weight traffic counted under int8, the interleaved two-system comparison,
and teacher-forced semantic codes reproducing decoding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import speechserve
from speechserve.bench import hf_compare, isq_agreement
from speechserve.cli import main
from speechserve.models import small_m
from speechserve.models.quantize import Int8Linear, quantize, weight_bytes


@pytest.mark.parametrize("kernel", [True, False])
def test_int8_linear_bytes_are_values_plus_scales(kernel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weight-only (kernel) layers keep fp32 scales; fbgemm's (no kernel) float64 ones."""
    if not kernel:
        monkeypatch.setattr(small_m, "kernel", lambda: None)
    model = nn.Sequential(nn.Linear(64, 48), nn.Linear(48, 16, bias=False))
    quantize(model, "int8")
    scale = 4 if kernel else 8
    assert weight_bytes(model) == (48 * 64 + 48 * scale + 48 * 4) + (
        16 * 48 + 16 * scale
    )  # int8 + scales + bias


def test_tts_weight_traffic_under_int8(tiny_checkpoint, tiny_tts) -> None:
    """Each quantized Linear read per step costs out·in bytes plus its scales (fp32 for the backbone's
    weight-only layers, float64 for the flow head's int8-dynamic ones: Family.isq_dynamic) instead of
    4·out·in; the backbone is read once per step, the flow transformer once per Euler step; the semantic
    head stays fp32 (Family.isq_keep)."""
    q = speechserve.load(tiny_checkpoint, device="cpu", isq="int8")
    steps = tiny_tts.model.cfg.flow.n_decoding_steps
    saved = 0
    for name, m in tiny_tts.model.named_modules():
        if type(m) is nn.Linear and name.startswith(("backbone.", "acoustic_transformer.")):
            if name == "acoustic_transformer.semantic_codebook_output":
                assert type(q.model.get_submodule(name)) is nn.Linear
                continue
            flow = name.startswith("acoustic_transformer.")
            assert (type(q.model.get_submodule(name)) is Int8Linear) != flow
            reads, scale = (steps, 8) if flow else (1, 4)
            saved += reads * (3 * m.weight.numel() - scale * m.out_features)
    assert saved > 0 and tiny_tts.weight_bytes_per_step() - q.weight_bytes_per_step() == saved


def _fake(ids_offset: int, seconds: float) -> hf_compare.Decode:
    def decode(prompt: torch.Tensor, tokens: int) -> tuple[torch.Tensor, list[float]]:
        return prompt[:, :tokens] + ids_offset, [seconds] * (tokens - 1)

    return decode


def test_compare_medians_speedup_and_ids() -> None:
    same = hf_compare.compare({"a": _fake(0, 0.01), "b": _fake(0, 0.03)}, [1, 4], 5, 8, 3, vocab=2000)
    assert [p.batch for p in same] == [1, 4] and all(p.ids_equal for p in same)
    assert same[1].speedup == pytest.approx(3.0) and same[1].tokens_per_s["a"] == pytest.approx(400.0)
    other = hf_compare.compare({"a": _fake(0, 0.01), "b": _fake(1, 0.01)}, [2], 5, 8, 2, vocab=2000)
    assert not other[0].ids_equal


def test_teacher_forced_semantic_codes_reproduce_decoding(tiny_tts) -> None:
    opts = speechserve.SynthesisOptions(seed=0, max_frames=12, ignore_end=True)
    codes = torch.stack([f.codes for f in tiny_tts.frames(isq_agreement.TEXT, None, opts)])
    picks, gaps = isq_agreement.teacher_forced_semantic(tiny_tts, codes)
    assert torch.equal(picks, codes[:, 0]) and bool((gaps >= 0).all())


def test_hf_compare_without_transformers_is_one_line(capsys) -> None:
    try:
        import transformers  # noqa: F401

        pytest.skip("transformers is installed here")
    except ImportError:
        pass
    assert main(["bench", "hf-compare", "--preset", "tiny"]) == 2
    assert "needs transformers" in capsys.readouterr().err
