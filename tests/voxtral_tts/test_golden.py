"""Parity with the reference (vllm-omni conventions) on every key of every public golden case.

Tolerance: integer tensors exact; float tensors max|ours − golden| ≤ 1e-4 · max|golden| (relative to the
tensor's peak), with identical −inf patterns. Worst error seen: 1.2e-6 absolute (flow_x, case_en).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechserve.testing.golden import run_case
from speechserve.testing.parity import assert_matches_golden

CASES = sorted(p.name for p in (Path(__file__).parents[1] / "golden" / "voxtral_tts").iterdir() if p.is_dir())


@pytest.fixture(scope="module", params=CASES)
def case_result(request: pytest.FixtureRequest, voxtral_tts_golden: Path):
    case_dir = voxtral_tts_golden / request.param
    return run_case(case_dir), load_file(str(case_dir / "expected.safetensors"))


def test_cases_exist() -> None:
    assert CASES == ["case_en", "case_fr"]


def test_same_keys(case_result) -> None:
    ours, expected = case_result
    assert set(ours) == set(expected)


@pytest.mark.parametrize(
    "key",
    [
        "prompt_ids", "prefill_embeds", "prefill_hidden", "hidden", "semantic_logits", "noise", "flow_x", "codes",
        "feedback_embedding_0", "feedback_embeddings", "codec_latent", "waveform", "waveform_stream",
    ],
)  # fmt: skip
def test_key_matches(case_result, key: str) -> None:
    ours, expected = case_result
    assert_matches_golden(key, ours[key], expected[key])


def test_end_frame_handling(case_result) -> None:
    ours, _ = case_result
    codes = ours["codes"]
    ends = (codes[:, 0] == 1).nonzero().flatten().tolist()
    if ends:  # case_fr: END is the last frame, carries [1, 2, …, 2], and is not decoded
        assert ends == [codes.shape[0] - 1]
        assert torch.all(codes[-1, 1:] == 2)
        assert ours["waveform"].numel() == 1920 * (codes.shape[0] - 1)
    else:
        assert ours["waveform"].numel() == 1920 * codes.shape[0]
