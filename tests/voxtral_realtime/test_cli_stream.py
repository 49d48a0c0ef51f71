"""`speechserve transcribe --stream` on a tiny realtime checkpoint: a file fed in 80 ms pieces, and raw PCM
piped into stdin, print exactly the text offline transcription gives for the same audio; misuse is one line
and exit status 2."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speechserve
from speechserve.cli import main
from speechserve.testing.cli import one_error_line


@pytest.fixture(scope="module")
def rt_pipe(tiny_realtime_checkpoint: Path):  # type: ignore[no-untyped-def]
    return speechserve.load(tiny_realtime_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def noise_pcm() -> np.ndarray:
    """2.5 s of 16 kHz int16 noise (the random model writes text for it)."""
    return (np.random.default_rng(0).standard_normal(40_000) * 3000).astype(np.int16)


@pytest.fixture(scope="module")
def noise_wav(tmp_path_factory: pytest.TempPathFactory, noise_pcm: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("stream_audio") / "noise.wav"
    sf.write(path, noise_pcm, 16_000, subtype="PCM_16")
    return path


def _stream(model: Path, *argv: str) -> list[str]:
    return ["transcribe", *argv, "--stream", "--model", str(model), "--device", "cpu"]


def test_file_stream_prints_the_offline_text(capsys, rt_pipe, tiny_realtime_checkpoint, noise_wav) -> None:  # type: ignore[no-untyped-def]
    expected = rt_pipe.transcribe(noise_wav).text
    assert expected.strip()
    assert main(_stream(tiny_realtime_checkpoint, str(noise_wav))) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_file_stream_with_delay(capsys, rt_pipe, tiny_realtime_checkpoint, noise_wav) -> None:  # type: ignore[no-untyped-def]
    expected = rt_pipe.transcribe(noise_wav, delay=80).text
    assert expected != rt_pipe.transcribe(noise_wav).text  # the delay reaches the model
    assert main(_stream(tiny_realtime_checkpoint, str(noise_wav), "--delay", "minimal")) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_stdin_pcm_through_a_pipe(rt_pipe, tiny_realtime_checkpoint, noise_wav, noise_pcm) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "speechserve", *_stream(tiny_realtime_checkpoint, "-")]
    done = subprocess.run(
        argv, input=noise_pcm.astype("<i2").tobytes(), capture_output=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == rt_pipe.transcribe(noise_wav).text + "\n"


def _sdk_stream(pipe, pcm: np.ndarray, rate: int) -> str:  # type: ignore[no-untyped-def]
    live = pipe.stream(sample_rate=rate)
    live.push(pcm)
    live.finish()
    return live.result().text


def test_stdin_at_another_rate_is_resampled(
    monkeypatch, capsys, rt_pipe, tiny_realtime_checkpoint, noise_pcm
) -> None:  # type: ignore[no-untyped-def]
    """8 kHz PCM is resampled to the model's 16 kHz (read as 16 kHz it would give other text)."""
    half = noise_pcm[::2].astype("<i2")
    piped = type("Stdin", (), {"buffer": io.BufferedReader(io.BytesIO(half.tobytes()))})()
    monkeypatch.setattr(sys, "stdin", piped)
    assert main(_stream(tiny_realtime_checkpoint, "-", "--rate", "8000")) == 0
    out = capsys.readouterr().out
    assert out == _sdk_stream(rt_pipe, half, 8000) + "\n"
    assert out != _sdk_stream(rt_pipe, half, 16_000) + "\n"


def test_a_model_that_cannot_stream(capsys, tiny_asr_checkpoint, noise_wav) -> None:  # type: ignore[no-untyped-def]
    err = one_error_line(capsys, _stream(tiny_asr_checkpoint, str(noise_wav)))
    assert "voxtral_asr" in err and "cannot transcribe a stream (--stream)" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--delay", "100"], "unsupported delay"),
        (["--delay", "fast"], "unknown delay"),
        (["--rate", "8000"], "--rate applies to raw PCM on stdin"),
        (["--format", "srt"], "takes no -o or --format"),
    ],
)
def test_bad_stream_options(capsys, tiny_realtime_checkpoint, noise_wav, extra, message) -> None:  # type: ignore[no-untyped-def]
    err = one_error_line(capsys, _stream(tiny_realtime_checkpoint, str(noise_wav), *extra))
    assert message in err


def test_stdin_needs_stream(capsys, tiny_realtime_checkpoint) -> None:  # type: ignore[no-untyped-def]
    err = one_error_line(capsys, ["transcribe", "-", "--model", str(tiny_realtime_checkpoint)])
    assert "needs --stream" in err


def test_missing_file(capsys, tiny_realtime_checkpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = one_error_line(capsys, _stream(tiny_realtime_checkpoint, str(tmp_path / "nope.wav")))
    assert "does not exist" in err
