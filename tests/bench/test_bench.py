"""The benchmark tools: VoxServe's viability formula, the offline sweep command, random checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

import speechserve
from speechserve.bench.metrics import chunk_viability, percentile, summarize
from speechserve.cli import main


def test_viability_matches_voxserve_definition() -> None:
    # reads at 0, 0.05, 0.15, 0.40 s carrying 0.1 s of audio each: chunk 3 arrives after 0.3 s played → late
    assert chunk_viability([0.0, 0.05, 0.15, 0.40], [0.1, 0.1, 0.1, 0.1]) == (pytest.approx(200 / 3), False)
    assert chunk_viability([0.0, 0.05, 0.15], [0.1, 0.2, 0.1]) == (100.0, True)
    assert chunk_viability([0.0, 0.1], [0.1, 0.1]) == (0.0, False)  # equal is not "still playing"
    assert chunk_viability([0.0], [1.0]) is None  # fewer than 2 reads: excluded


def test_percentiles() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 95) == 5
    assert summarize([1.0, 2.0, 3.0])["mean"] == 2.0


def test_offline_sweep_command(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "offline", "--preset", "tiny", "--concurrency", "1,2", "--frames", "3", "--repeats", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2 and "bare model loop" in out and "throughput at concurrency 2" in out


def test_random_checkpoint_command(tmp_path: Path) -> None:
    assert main(["dev", "random-checkpoint", str(tmp_path / "ck"), "--preset", "tiny", "--with-encoder"]) == 0
    tts = speechserve.load(tmp_path / "ck")
    assert tts.supports_voice_cloning and tts.voices == ["casual_male", "cheerful_female", "fr_female"]
