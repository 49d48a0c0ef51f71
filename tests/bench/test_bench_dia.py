"""`speechserve bench offline` on a tiny Dia checkpoint: decoder steps per second and streamed TTFA per
concurrency, every request forced to the same length (its figures' fields and sanity, not their values)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import speechserve
from speechserve.cli import main

FRAMES = 24
"""Audio frames per request (forced: the end-of-speech id is ignored)."""


@pytest.fixture(scope="module")
def tiny_dia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from speechserve.testing.dia_checkpoint import write_random_dia_checkpoint

    return write_random_dia_checkpoint(tmp_path_factory.mktemp("bench_dia"), seed=0)


def test_offline_sweep_of_dia(capsys, tiny_dia: Path) -> None:
    argv = ["bench", "offline", "--model", str(tiny_dia), "--concurrency", "1,2", "--frames", str(FRAMES),
            "--repeats", "1", "--device", "cpu", "--json"]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["concurrency"] for r in records] == [1, 2]
    pipe = speechserve.load(tiny_dia, device="cpu")
    frame_s = pipe.samples_per_frame / pipe.sample_rate
    for r in records:
        assert r["model"] == tiny_dia.name and r["dtype"] == "float32"
        # every request gave exactly FRAMES frames of audio
        assert r["audio_s_per_s"] * r["wall_s"] == pytest.approx(
            r["concurrency"] * FRAMES * frame_s, rel=1e-6
        )
        # decoder steps: the frames plus the delay pattern's drain, per request
        steps = r["frames_per_s"] * r["wall_s"] / r["concurrency"]
        assert FRAMES < steps <= FRAMES + max(pipe.cfg.delay_pattern) + 1
        assert 0 < r["ttfa_ms_p50"] <= r["ttfa_ms_p95"] <= 1000 * r["wall_s"]
        assert r["rtf_p50"] > 0 and r["late_streams"] >= 0
        assert r["codec_ms_per_frame"] is not None and math.isfinite(r["codec_ms_per_frame"])
