"""Parity with the reference (transformers DiaForConditionalGeneration = nari-labs/dia HEAD with the 16-BOS-row
convention, descript DAC) on every key of both golden cases, from both Dia layouts and both DAC layouts.

Tolerance (golden README): integer tensors exact; float tensors max|ours − golden| ≤ 1e-4 · max|golden|.
Worst seen: waveform 8.4e-6 (nari + descript weights), logits 3.6e-7, encoder 6.1e-7, DAC latent 1.4e-7.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechserve.models.dia.config import parse_config
from speechserve.models.dia.loader import load_dia_weights, read_dac_checkpoint
from speechserve.testing.golden import run_case
from speechserve.testing.parity import assert_matches_golden

GOLDEN = Path(__file__).parents[1] / "golden" / "dia"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
REL_TOL = 1e-4
KEYS = [
    "text_ids", "text_mask", "encoder_out_cond", "encoder_out_uncond", "logits_cond_step0", "logits_uncond_step0",
    "cfg_logits_step0", "logits_cond", "logits_uncond", "delayed_codes", "codes", "num_frames", "dac_latent",
    "waveform",
]  # fmt: skip


@pytest.fixture(scope="module", params=[(c, lay) for c in CASES for lay in ("nari", "hf")], ids=str)
def case_result(request: pytest.FixtureRequest):
    case, layout = request.param
    return run_case(GOLDEN / case, layout=layout), load_file(str(GOLDEN / case / "expected.safetensors"))


def test_cases_exist() -> None:
    assert CASES == ["case_a", "case_b"]


def test_same_keys(case_result) -> None:
    ours, expected = case_result
    assert set(ours) == set(expected) == set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_key_matches(case_result, key: str) -> None:
    ours, expected = case_result
    assert_matches_golden(key, ours[key], expected[key])


def test_natural_and_forced_eos(case_result) -> None:
    """case_b item 0 stops on its own EOS (row 20 → 19 frames); the others are forced at row 40 − 15."""
    ours, _ = case_result
    frames = ours["num_frames"].tolist()
    assert frames in ([24, 24], [19, 24])
    for b, n in enumerate(frames):
        rows = ours["delayed_codes"][b]
        assert rows[n + 1, 0] == 1024  # the EOS row of channel 0
        assert torch.all(rows[n + 1 + 15 + 1 :] == 1025)  # PAD after the countdown
        assert torch.all(ours["waveform"][b, n * 512 :] == 0)


@pytest.mark.parametrize("case", CASES)
def test_both_dia_layouts_load_the_same_weights(case: str) -> None:
    cfg = parse_config(json.loads((GOLDEN / case / "dia_hf" / "config.json").read_text()))
    nari_cfg = parse_config(json.loads((GOLDEN / case / "dia_nari" / "config.json").read_text()))
    assert cfg == nari_cfg  # the hub schema and the transformers-5 schema say the same thing
    hf = load_dia_weights(cfg, GOLDEN / case / "dia_hf", torch.float32, torch.device("cpu")).state_dict()
    nari = load_dia_weights(cfg, GOLDEN / case / "dia_nari", torch.float32, torch.device("cpu")).state_dict()
    assert hf.keys() == nari.keys()
    assert all(torch.equal(hf[k], nari[k]) for k in hf)


@pytest.mark.parametrize("case", CASES)
def test_both_dac_layouts_load_the_same_weights(case: str) -> None:
    cfg_d, descript = read_dac_checkpoint(GOLDEN / case / "dac_descript")
    cfg_h, hf = read_dac_checkpoint(GOLDEN / case / "dac_hf")
    assert cfg_d == cfg_h and descript.keys() == hf.keys()
    for name in hf:  # folded by us vs by torch._weight_norm: ~1 ulp
        torch.testing.assert_close(descript[name], hf[name], rtol=1e-6, atol=1e-7)


def test_cross_pairing_of_layouts() -> None:
    """The transformers Dia with the descript DAC gives the same codes and waveform."""
    case = json.loads((GOLDEN / "case_b" / "case.json").read_text())
    from speechserve.testing.golden_dia import run_dia_case

    ours = run_dia_case(GOLDEN / "case_b", case, "hf", dac="dac_descript")
    want = load_file(str(GOLDEN / "case_b" / "expected.safetensors"))
    assert torch.equal(ours["codes"], want["codes"])
    assert (ours["waveform"] - want["waveform"]).abs().max() <= REL_TOL * want["waveform"].abs().max()
