"""`speechserve speak` and `speechserve voices` on a tiny checkpoint, decoded back with PyAV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from speechserve.cli import main


def _probe(path: Path) -> tuple[int, int, float, np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        rate, channels = stream.rate, stream.codec_context.channels
    data = np.concatenate([f.reshape(channels, -1) if f.shape[0] != channels else f for f in frames], axis=1)
    return rate, channels, data.shape[1] / rate, data


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3"])
def test_speak_writes_24khz_mono(tiny_checkpoint: Path, tmp_path: Path, ext: str, capsys) -> None:
    out = tmp_path / f"out.{ext}"
    argv = ["speak", "Hello there.", "--model", str(tiny_checkpoint), "--voice", "casual_male"]
    assert main([*argv, "-o", str(out), "--seed", "1", "--max-frames", "10"]) == 0
    rate, channels, seconds, data = _probe(out)
    assert (rate, channels) == (24000, 1)
    assert abs(seconds - 0.8) < (0.06 if ext == "mp3" else 1e-6)  # 10 frames x 80 ms (+ mp3 encoder padding)
    assert np.abs(data).max() > 0
    assert "wrote" in capsys.readouterr().out


def test_wav_matches_sdk(tiny_checkpoint: Path, tiny_tts, tmp_path: Path) -> None:
    import speechserve

    out = tmp_path / "out.wav"
    main(
        [
            "speak",
            "Same words.",
            "--model",
            str(tiny_checkpoint),
            "-o",
            str(out),
            "--seed",
            "4",
            "--max-frames",
            "6",
        ]
    )
    _, _, _, data = _probe(out)
    want = tiny_tts.generate(
        "Same words.", options=speechserve.SynthesisOptions(seed=4, max_frames=6)
    ).samples
    got = data[0].astype(np.float32) / (32768.0 if data.dtype == np.int16 else 1.0)
    assert np.abs(got - np.clip(want, -1, 1)).max() < 2 / 32767


def test_voices_lists_presets(tiny_checkpoint: Path, capsys) -> None:
    assert main(["voices", "--model", str(tiny_checkpoint)]) == 0
    assert capsys.readouterr().out.split() == ["casual_male", "cheerful_female", "fr_female"]


def test_errors_are_one_line(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "speak",
                "Hi.",
                "--model",
                str(tiny_checkpoint),
                "--voice",
                "nope",
                "-o",
                str(tmp_path / "x.wav"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Unknown voice 'nope'" in err and "casual_male" in err
    assert main(["speak", "Hi.", "--model", str(tmp_path / "missing"), "-o", str(tmp_path / "x.wav")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["speak", "Hi.", "--model", str(tiny_checkpoint), "-o", str(tmp_path / "x.xyz")]) == 2


def test_console_script_runs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.wav"
    cmd = [
        sys.executable,
        "-m",
        "speechserve",
        "speak",
        "Hi.",
        "--model",
        str(tiny_checkpoint),
        "-o",
        str(out),
    ]
    proc = subprocess.run(
        [*cmd, "--max-frames", "3", "--seed", "0"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert _probe(out)[:2] == (24000, 1)
