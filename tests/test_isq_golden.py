"""ISQ int8 against the golden cases: which tiny cases keep their reference ids/codes under int8 (measured on
every case and layout of tests/golden, fp32 CPU, fbgemm):

- Voxtral Realtime (realtime4b, both layouts): the 12 greedy ids of both utterances are kept — tested here.
  The longer runs diverge late (offline/stream ids: en from id 46 of 53, fr from 15–21 of 34).
- Voxtral ASR (mini3b): greedy ids differ from id 0–5 (top-1/top-2 logit gaps of the dim-32 model are
  ~1e-3, below int8's error).
- Voxtral TTS (case_en, case_fr): codes differ from frame 0 (an acoustic code: FSQ boundary margins are
  3e-4); case_fr's END moves.
- Dia (case_a, case_b, both layouts): codes differ from the first frames.

Where ids diverge, closeness is what can be tested: hidden states and logits (tests/test_isq.py); agreement
over long runs is a property of real widths (docs/isq-results.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import speechserve.loading
from speechserve.testing.golden import run_case
from speechserve.testing.golden_cases import mirror

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def realtime_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("golden_src")
    (src / "voxtral_realtime").symlink_to(GOLDEN / "voxtral_realtime")
    (case,) = mirror(src, tmp_path_factory.mktemp("golden_isq"))
    return case


@pytest.mark.parametrize("layout", ["mistral", "hf"])
def test_realtime_keeps_its_greedy_ids_under_int8(realtime_case: Path, layout: str, monkeypatch) -> None:
    real_load, seen = speechserve.loading.load, []

    def int8_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(real_load(*args, **kwargs, isq="int8"))
        return seen[-1]

    monkeypatch.setattr(speechserve.loading, "load", int8_load)
    ours = run_case(realtime_case, layout=layout)
    expected = load_file(str(realtime_case / "expected.safetensors"))
    assert [p.isq for p in seen] == ["int8"]  # the case really ran quantized
    for utt in ("en", "fr"):
        assert torch.equal(ours[f"{utt}.greedy_ids"], expected[f"{utt}.greedy_ids"])
