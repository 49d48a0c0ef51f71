"""Fixtures of the Voxtral Realtime tests: the golden case with its tokenizer rebuilt, the golden model loaded,
and tiny random checkpoints in both layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN = Path(__file__).parents[1] / "golden" / "voxtral_realtime"


@pytest.fixture(scope="session")
def voxtral_realtime_golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/golden/voxtral_realtime mirrored with `checkpoint_mistral/tekken.json` (8.4 MB) rebuilt from
    mistral_common's bundled tokenizer (byte-identical to the reference's; a test checks its sha256)."""
    from speechserve.testing.realtime_checkpoint import write_voxtral_realtime_tekken

    dst = tmp_path_factory.mktemp("voxtral_realtime_golden")
    tekken = write_voxtral_realtime_tekken(dst / "tekken.json")
    for case in sorted(p for p in GOLDEN.iterdir() if p.is_dir()):
        (dst / case.name).mkdir()
        for item in case.iterdir():
            if item.name != "checkpoint_mistral":
                (dst / case.name / item.name).symlink_to(item.resolve())
        native = dst / case.name / "checkpoint_mistral"
        native.mkdir()
        for item in (case / "checkpoint_mistral").iterdir():
            (native / item.name).symlink_to(item.resolve())
        (native / "tekken.json").symlink_to(tekken)
    return dst


@pytest.fixture(scope="session")
def realtime_case(voxtral_realtime_golden: Path) -> Path:
    return voxtral_realtime_golden / "realtime4b"


@pytest.fixture(scope="session")
def realtime_pipe(realtime_case: Path):
    """The golden checkpoint (native layout) through the public SDK, fp32 on the CPU."""
    import speechserve

    return speechserve.load(realtime_case / "checkpoint_mistral", device="cpu")


@pytest.fixture(scope="session")
def en_samples(realtime_pipe, realtime_case: Path):
    """The golden case's English utterance (3.44 s, 16 kHz float32)."""
    return realtime_pipe.load_audio(realtime_case / "en.wav")


@pytest.fixture(scope="session")
def tiny_realtime_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Voxtral Realtime checkpoint in the Mistral native layout (with tekken.json)."""
    from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint

    return write_random_realtime_checkpoint(tmp_path_factory.mktemp("tiny_rt"), "mistral", seed=0)


@pytest.fixture(scope="session")
def tiny_realtime_checkpoint_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights (seed 0) in the Hugging Face layout (with tekken.json)."""
    from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint

    return write_random_realtime_checkpoint(tmp_path_factory.mktemp("tiny_rt_hf"), "hf", seed=0)
