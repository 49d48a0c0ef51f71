"""Tiny random Dia checkpoints in the real layouts (each with its `dac/` codec folder), loaded through the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechserve.testing.dia_checkpoint import write_random_dia_checkpoint


@pytest.fixture(scope="session")
def dia_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """transformers layout (2 shards + index), transformers DAC in `dac/`."""
    return write_random_dia_checkpoint(tmp_path_factory.mktemp("dia_hf"), seed=0)


@pytest.fixture(scope="session")
def dia_checkpoint_nari(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights (seed 0) in the nari-labs layout, with the DAC as a descript `weights.pth`."""
    return write_random_dia_checkpoint(
        tmp_path_factory.mktemp("dia_nari"), seed=0, layout="nari", dac_layout="descript"
    )


@pytest.fixture(scope="session")
def dia(dia_checkpoint: Path):
    """The tiny checkpoint through the public SDK (fp32, CPU)."""
    import speechserve

    return speechserve.load(dia_checkpoint, device="cpu")
