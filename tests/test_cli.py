"""`speechserve speak`, `voices` and `serve` on a tiny checkpoint: audio decoded back with PyAV, the progress
bar, CPU threads, timestamped server logs."""

from __future__ import annotations

import logging.config
import re
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from speechserve.cli import main, serve_log_config
from speechserve.testing.checkpoint import RELEASE_VOICES

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


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


def test_voices_lists_the_presets(tiny_checkpoint: Path, tiny_tts, capsys) -> None:
    assert main(["voices", "--model", str(tiny_checkpoint)]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == tiny_tts.voices and "casual_male" in listed and set(listed) <= set(RELEASE_VOICES)


def test_errors_are_one_line(tiny_checkpoint: Path, tmp_path: Path, capsys) -> None:
    argv = ["speak", "Hi.", "--model", str(tiny_checkpoint), "--voice", "nope", "-o", str(tmp_path / "x.wav")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechserve: error: Unknown voice 'nope'") and "casual_male" in err
    assert len(err.splitlines()) == 1  # refused before the progress bar starts
    assert main(["speak", "Hi.", "--model", str(tmp_path / "missing"), "-o", str(tmp_path / "x.wav")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["speak", "Hi.", "--model", str(tiny_checkpoint), "-o", str(tmp_path / "x.xyz")]) == 2


def test_threads_sets_torch_cpu_threads(tiny_checkpoint: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    try:
        argv = ["speak", "Hi.", "--model", str(tiny_checkpoint), "-o", str(tmp_path / "t.wav")]
        assert main([*argv, "--max-frames", "2", "--threads", str(want)]) == 0
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)


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
        [*cmd, "--max-frames", "3", "--seed", "0", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rate, channels, seconds, _ = _probe(out)
    assert (rate, channels) == (24000, 1)
    # the progress bar, on stderr only: frames done/total, frames per second, audio seconds, real-time factor
    final = proc.stderr.replace("\r", "\n").strip().splitlines()[-1]
    m = re.match(r"speak: 100%\|.*\| (\d+)/(\d+) \[.*frame/s, ([\d.]+) s audio, RTF ([\d.]+)\]$", final)
    assert m, proc.stderr
    assert m[1] == m[2] and 1 <= int(m[1]) <= 3 and float(m[3]) == pytest.approx(seconds, abs=0.01)
    assert "frame/s" not in proc.stdout and proc.stdout.startswith(f"wrote {out}")


def test_serve_log_formats_carry_timestamps() -> None:
    config = serve_log_config("info")
    configurator = logging.config.DictConfigurator(config)
    access = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', None, None)
    access.args = ("127.0.0.1:5000", "GET", "/health", "1.1", 200)
    plain = logging.LogRecord("speechserve.server", logging.INFO, "", 0, "ready", None, None)
    for name, spec in config["formatters"].items():
        formatter = configurator.configure_formatter(dict(spec))
        line = formatter.format(access if name == "access" else plain)
        assert TIMESTAMP.match(line), (name, line)
    handlers = {config["handlers"][h]["formatter"] for h in config["root"]["handlers"]}
    assert handlers == {"plain"} and config["root"]["level"] == "INFO"


def test_serve_logs_with_timestamps(tiny_checkpoint: Path) -> None:
    cmd = [sys.executable, "-m", "speechserve", "serve", "--model", str(tiny_checkpoint), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--no-warmup", "--cpu-threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    watchdog = threading.Timer(240, proc.kill)  # a server that never starts fails the test, not the run
    watchdog.start()
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if "Uvicorn running on" in line:
                break
    finally:
        watchdog.cancel()
        proc.kill()  # only its start-up log is under test
        proc.communicate(timeout=60)
    assert lines and "Uvicorn running on" in lines[-1], "".join(lines)
    assert all(TIMESTAMP.match(line) for line in lines), "".join(lines)
