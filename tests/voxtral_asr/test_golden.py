"""Parity with the transformers reference on every key of every public Voxtral Mini 3B golden case, from the
case's wav files through our own front end, for both on-disk layouts.

Tolerance: integer tensors exact; float tensors max|ours − golden| ≤ 1e-4 · max|golden| (relative to the
tensor's peak). Worst errors seen (fp32, CPU): mel 6.3e-5 (fp32 STFT rounding; the reference itself is 4e-5
from float64), encoder_out 7.2e-6, adapter_out 4.7e-6, logits 5.8e-6, top-k logits 7.2e-6; all ids identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechserve.testing.golden import run_case
from speechserve.testing.parity import assert_matches_golden, assert_rebuilt_file, golden_keys

ROOT = Path(__file__).parents[1] / "golden" / "voxtral_asr"
CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())


@pytest.fixture(scope="module", params=[(c, layout) for c in CASES for layout in ("mistral", "hf")], ids=str)
def case_result(request: pytest.FixtureRequest, voxtral_asr_golden: Path):
    case, layout = request.param
    case_dir = voxtral_asr_golden / case
    return run_case(case_dir, layout=layout), load_file(str(case_dir / "expected.safetensors"))


def test_cases_exist() -> None:
    assert CASES == ["mini3b"]


def test_rebuilt_tokenizer_is_the_reference_file(voxtral_asr_golden: Path) -> None:
    for case in CASES:
        assert_rebuilt_file(ROOT / case, voxtral_asr_golden / case, "checkpoint_mistral/tekken.json")


def test_same_keys(case_result) -> None:
    ours, expected = case_result
    assert set(ours) == set(expected)


@pytest.mark.parametrize("key", golden_keys(ROOT / "mini3b"))
def test_key_matches(case_result, key: str) -> None:
    ours, expected = case_result
    assert_matches_golden(key, ours[key], expected[key])


def test_greedy_ids_are_the_reference_argmax(case_result) -> None:
    """The decode feeds back its own argmax: step 0's top-1 is logits_last's argmax, and so on."""
    ours, _ = case_result
    for prefix in ("en.transcribe", "fr.chat"):
        assert torch.equal(ours[f"{prefix}.greedy_topk_ids"][:, 0], ours[f"{prefix}.greedy_ids"])
        assert int(ours[f"{prefix}.logits_last"].argmax()) == int(ours[f"{prefix}.greedy_ids"][0])
