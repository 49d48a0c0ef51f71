"""Shared fixtures: golden cases with a rebuilt tokenizer, tiny random checkpoints in the release layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechserve.testing.checkpoint import write_random_checkpoint
from speechserve.testing.tekken import write_voxtral_tekken

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def voxtral_tts_golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder mirroring tests/golden/voxtral_tts with the 11 MB `tekken.json` rebuilt beside the cases
    (exactly as the golden README says it was made), so it need not be committed."""
    src = GOLDEN / "voxtral_tts"
    dst = tmp_path_factory.mktemp("voxtral_tts_golden")
    voices: dict[str, int] = {}
    for case in sorted(p for p in src.iterdir() if p.is_dir()):
        (dst / case.name).mkdir()
        for item in case.iterdir():
            (dst / case.name / item.name).symlink_to(item.resolve())
        meta = json.loads((case / "case.json").read_text())
        voices.update(
            json.loads((case / "model" / "params.json").read_text())["multimodal"]["audio_tokenizer_args"][
                "voice"
            ]
        )
        assert meta["tekken"] == "../tekken.json"
    from speechserve.testing.checkpoint import RELEASE_VOICES

    write_voxtral_tekken(dst / "tekken.json", {v: RELEASE_VOICES[v][1] for v in sorted(voices)})
    return dst


VOICES = ("casual_male", "cheerful_female", "fr_female")
"""The test checkpoints' presets (the writer's default is all 20 of the release)."""


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Voxtral TTS checkpoint in the exact release layout (no encoder weights)."""
    return write_random_checkpoint(tmp_path_factory.mktemp("tiny_tts"), preset="tiny", seed=0, voices=VOICES)


@pytest.fixture(scope="session")
def tiny_checkpoint_with_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same layout plus random codec-encoder weights (`audio_tokenizer.input_proj.*`, `encoder_blocks.*`)."""
    return write_random_checkpoint(
        tmp_path_factory.mktemp("tiny_tts_enc"), preset="tiny", with_encoder=True, seed=1, voices=VOICES
    )


@pytest.fixture(scope="session")
def tiny_tts(tiny_checkpoint: Path):
    """The tiny checkpoint loaded through the public SDK (fp32, CPU)."""
    import speechserve

    return speechserve.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def tiny_tts_with_encoder(tiny_checkpoint_with_encoder: Path):
    """The encoder-bearing tiny checkpoint loaded through the SDK."""
    import speechserve

    return speechserve.load(tiny_checkpoint_with_encoder, device="cpu")


@pytest.fixture(scope="session")
def voxtral_asr_golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/golden/voxtral_asr mirrored with each case's 8.4 MB `checkpoint_mistral/tekken.json` rebuilt from
    mistral_common's bundled tokenizer (byte-identical to the reference's; tests check its sha256)."""
    from speechserve.testing.tekken import write_voxtral_asr_tekken

    src = GOLDEN / "voxtral_asr"
    dst = tmp_path_factory.mktemp("voxtral_asr_golden")
    tekken = write_voxtral_asr_tekken(dst / "tekken.json")
    for case in sorted(p for p in src.iterdir() if p.is_dir()):
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
def tiny_asr_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Voxtral Mini 3B checkpoint in the Mistral native layout (with tekken.json)."""
    from speechserve.testing.asr_checkpoint import write_random_asr_checkpoint

    return write_random_asr_checkpoint(tmp_path_factory.mktemp("tiny_asr"), "mistral", seed=0)


@pytest.fixture(scope="session")
def tiny_asr_checkpoint_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights (seed 0) in the Hugging Face layout, in two shards with an index (with tekken.json)."""
    from speechserve.testing.asr_checkpoint import write_random_asr_checkpoint

    return write_random_asr_checkpoint(tmp_path_factory.mktemp("tiny_asr_hf"), "hf", seed=0, shards=2)


@pytest.fixture(scope="session")
def tiny_asr(tiny_asr_checkpoint: Path):
    """The tiny ASR checkpoint loaded through the public SDK (fp32, CPU)."""
    import speechserve

    return speechserve.load(tiny_asr_checkpoint, device="cpu")
