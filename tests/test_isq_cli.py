"""`--isq` on the command line and the server: the model is really quantized at load, and a mode this machine
cannot run is one line on stderr with exit status 2, reported before the model is even looked at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import speechserve
from speechserve.cli import ISQ_MODES, main
from speechserve.models.quantize import MODES, is_int8
from speechserve.server.settings import ServerSettings
from speechserve.server.state import load_served_model


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every pipeline `speechserve.load` returns during the test (the real load, observed)."""
    seen: list = []
    real = speechserve.load

    def observed(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(speechserve, "load", observed)
    return seen


def test_choices_are_the_sdk_modes() -> None:
    assert ISQ_MODES == MODES


def test_speak_int8_quantizes_the_backbone(
    tiny_checkpoint: Path, tmp_path: Path, loaded: list, capsys
) -> None:
    out = tmp_path / "q.wav"
    argv = [
        "speak",
        "Hello.",
        "--model",
        str(tiny_checkpoint),
        "-o",
        str(out),
        "--max-frames",
        "4",
        "--seed",
        "1",
    ]
    assert main([*argv, "--isq", "int8", "--device", "cpu"]) == 0
    (pipe,) = loaded
    assert pipe.isq == "int8" and is_int8(pipe.model.backbone.layers[0].attention.wq)
    assert out.stat().st_size > 44 and "wrote" in capsys.readouterr().out


def test_transcribe_int8_quantizes_the_decoder(
    tiny_asr_checkpoint: Path, tmp_path: Path, loaded: list
) -> None:
    import numpy as np

    from speechserve.audio import write_audio_file

    wav = tmp_path / "a.wav"
    write_audio_file(
        str(wav), (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32), 16000
    )
    argv = ["transcribe", str(wav), "--model", str(tiny_asr_checkpoint), "--max-tokens", "3"]
    assert main([*argv, "--isq", "int8", "--device", "cpu"]) == 0
    (pipe,) = loaded
    assert pipe.isq == "int8" and any(is_int8(m) for m in pipe.model.modules())


@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        (["speak", "Hi.", "-o", "{tmp}/x.wav"], "int4"),
        (["speak", "Hi.", "-o", "{tmp}/x.wav"], "fp8"),
        (["transcribe", "{tmp}/in.wav"], "int4"),
        (["serve"], "fp8"),
    ],
)
def test_gpu_modes_on_the_cpu_are_one_line(
    tmp_path: Path, capsys, loaded: list, argv: list[str], mode: str
) -> None:
    (tmp_path / "in.wav").write_bytes(b"RIFF")
    missing = tmp_path / "no-such-model"  # refused before the model is even looked for
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*args, "--model", str(missing), "--device", "cpu", "--isq", mode]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"speechserve: error: --isq {mode} needs a CUDA GPU; on the CPU use --isq int8 or int8-dynamic\n"
    )
    assert loaded == []


def test_unknown_mode_is_an_argument_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["speak", "Hi.", "--model", "m", "--isq", "int3"])
    assert exit_.value.code == 2 and "invalid choice: 'int3'" in capsys.readouterr().err


def test_server_setting_reaches_the_loader(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHSERVE_ISQ", "int8")
    settings = ServerSettings(model=[str(tiny_checkpoint)], device="cpu", warmup=False)
    assert settings.isq == "int8"
    threads = torch.get_num_threads()
    try:
        served = load_served_model(settings)
    finally:
        torch.set_num_threads(threads)
    assert served.pipeline.isq == "int8" and is_int8(served.pipeline.model.backbone.layers[0].attention.wq)
    assert ServerSettings(model=["m"], isq=None).isq is None


def test_bench_offline_isq(capsys) -> None:
    args = ["bench", "offline", "--preset", "tiny", "--concurrency", "1", "--frames", "3", "--repeats", "1"]
    assert main([*args, "--json", "--device", "cpu", "--isq", "int8"]) == 0
    (point,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert point["isq"] == "int8" and point["frames_per_s"] > 0 and point["backbone_ms_per_frame"] > 0
    assert point["weight_gb_per_s"] > 0  # int8 values and scales counted (models.quantize.weight_bytes)
    assert main([*args, "--device", "cpu", "--isq", "fp8"]) == 2
    assert (
        capsys.readouterr().err
        == "speechserve: error: --isq fp8 needs a CUDA GPU; on the CPU use --isq int8 or int8-dynamic\n"
    )
