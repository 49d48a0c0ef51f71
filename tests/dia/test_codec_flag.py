"""Where Dia's DAC comes from when the checkpoint has no `dac/` folder: `--codec` on `speak` (and `voices`),
`speechserve.load(codec=...)`, the server's `codec` setting; a missing path or an unreachable hub id is one
line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import speechserve
from speechserve.cli import main
from speechserve.cli.serve import _add_serve_parser
from speechserve.errors import ModelNotFound
from speechserve.server import ServerSettings
from speechserve.testing.cli import one_error_line
from speechserve.testing.dia_checkpoint import write_random_dac, write_random_dia_checkpoint


@pytest.fixture(scope="module")
def bare_dia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Dia checkpoint without its `dac/` folder."""
    root = write_random_dia_checkpoint(tmp_path_factory.mktemp("dia_bare"), seed=0, with_dac=False)
    assert not (root / "dac").exists()
    return root


@pytest.fixture(scope="module")
def tiny_dac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DAC the tiny checkpoints carry (seed 1), in a directory of its own."""
    return write_random_dac(tmp_path_factory.mktemp("dac") / "codec", "tiny", seed=1)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network and an empty hub cache; no codec from the environment."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("SPEECHSERVE_DIA_CODEC", raising=False)


def _speak(bare_dia: Path, out: Path, *extra: str) -> list[str]:
    return ["speak", "[S1] Hi.", "--model", str(bare_dia), "-o", str(out), "--device", "cpu",
            "--seed", "0", "--max-frames", "12", *extra]  # fmt: skip


def test_speak_with_codec_directory(capsys, offline, bare_dia: Path, tiny_dac: Path, tmp_path: Path) -> None:
    out = tmp_path / "hi.wav"
    assert main(_speak(bare_dia, out, "--codec", str(tiny_dac))) == 0
    audio, rate = sf.read(out)
    assert rate == 44_100 and len(audio) > 0 and np.isfinite(audio).all()
    assert "wrote" in capsys.readouterr().out


def test_codec_flag_equals_the_dac_folder(
    offline, bare_dia: Path, tiny_dac: Path, dia_checkpoint: Path
) -> None:
    """`codec=` loads the given DAC (the one the tiny checkpoints carry in `dac/`, which wins over `codec`)."""
    with_flag = speechserve.load(bare_dia, device="cpu", codec=tiny_dac).dac.state_dict()
    with_folder = speechserve.load(dia_checkpoint, device="cpu", codec="/nonexistent").dac.state_dict()
    assert with_flag.keys() == with_folder.keys()
    assert all(torch.equal(with_flag[k], with_folder[k]) for k in with_flag)


def test_missing_codec_path_is_a_usage_error(capsys, offline, bare_dia: Path, tmp_path: Path) -> None:
    out = tmp_path / "hi.wav"
    err = one_error_line(capsys, _speak(bare_dia, out, "--codec", str(tmp_path / "no-such-dac")))
    assert "--codec" in err and "does not exist" in err
    assert not out.exists()


def test_offline_hub_codec_is_one_line(capsys, offline, bare_dia: Path, tmp_path: Path) -> None:
    err = one_error_line(capsys, _speak(bare_dia, tmp_path / "a.wav", "--codec", "someone/some-dac"))
    assert "DAC codec" in err and "'someone/some-dac'" in err and "offline" in err.lower()


def test_default_codec_offline_is_one_line(capsys, offline, bare_dia: Path, tmp_path: Path) -> None:
    err = one_error_line(capsys, _speak(bare_dia, tmp_path / "a.wav"))
    assert "descript/dac_44khz" in err and "SPEECHSERVE_DIA_CODEC" in err


def test_load_raises_model_not_found_offline(offline, bare_dia: Path) -> None:
    with pytest.raises(ModelNotFound, match="'someone/some-dac' \\(codec\\)"):
        speechserve.load(bare_dia, device="cpu", codec="someone/some-dac")


def test_voices_takes_codec(capsys, offline, bare_dia: Path, tiny_dac: Path) -> None:
    assert main(["voices", "--model", str(bare_dia), "--codec", str(tiny_dac), "--device", "cpu"]) == 0


def test_serve_flag_and_env_become_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    _add_serve_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--codec", "/models/dac"])
    assert args.codec == "/models/dac"
    assert ServerSettings(model=["m"], codec=args.codec).codec == "/models/dac"
    monkeypatch.setenv("SPEECHSERVE_CODEC", "descript/dac_44khz")
    assert ServerSettings(model=["m"]).codec == "descript/dac_44khz"
