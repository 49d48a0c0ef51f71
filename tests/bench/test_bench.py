"""The benchmark tools: VoxServe's viability formula, the offline sweep command, random checkpoints of every
family."""

from __future__ import annotations

from pathlib import Path

import pytest

import speechserve
from speechserve import registry
from speechserve.bench.metrics import chunk_viability, percentile, summarize
from speechserve.cli import main
from speechserve.server.settings import OPENAI_VOICE_ALIASES
from speechserve.testing.checkpoint import RELEASE_VOICES

WRITERS = [f.name for f in registry.families() if f.write_random is not None]


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
    assert registry.family_of(tts).name == "voxtral_tts" and tts.supports_voice_cloning
    assert tts.voices == sorted(RELEASE_VOICES) and len(tts.voices) == 20
    assert set(OPENAI_VOICE_ALIASES.values()) <= set(tts.voices)  # "voice": "alloy" works as in the README


@pytest.mark.parametrize("family", WRITERS)
def test_random_checkpoint_of_every_family_loads(tmp_path: Path, family: str, capsys) -> None:
    assert main(["dev", "random-checkpoint", "--family", family, str(tmp_path / "ck")]) == 0
    assert f"wrote a random tiny {family} checkpoint" in capsys.readouterr().out
    pipeline = speechserve.load(tmp_path / "ck", device="cpu")
    assert registry.family_of(pipeline).name == family


def test_random_checkpoint_options_a_family_lacks(tmp_path: Path, capsys) -> None:
    """A preset or an option the family's writer does not have is a one-line usage error, for any family."""

    def write_random(directory: str, preset: str = "tiny", seed: int = 0) -> Path:
        sizes = {"tiny": 1}
        Path(directory, f"w{sizes[preset]}").mkdir(parents=True)
        return Path(directory)

    toy = registry.Family("toy_writer", lambda fmt, cfg: False, lambda ctx: None, frozenset({"speech"}),
                          write_random=write_random)  # fmt: skip
    registry.register(toy)
    try:
        assert main(["dev", "random-checkpoint", "--family", "toy_writer", str(tmp_path / "a")]) == 0
        assert (tmp_path / "a" / "w1").is_dir()
        assert (
            main(
                [
                    "dev",
                    "random-checkpoint",
                    "--family",
                    "toy_writer",
                    "--preset",
                    "small",
                    str(tmp_path / "b"),
                ]
            )
            == 2
        )
        assert (
            capsys.readouterr().err == "speechserve: error: --preset small: toy_writer has no such preset\n"
        )
        assert (
            main(
                ["dev", "random-checkpoint", "--family", "toy_writer", "--with-encoder", str(tmp_path / "c")]
            )
            == 2
        )
        assert (
            capsys.readouterr().err
            == "speechserve: error: --with-encoder does not apply to toy_writer checkpoints\n"
        )
    finally:
        registry.unregister("toy_writer")
