"""`speechserve transcribe` on a tiny ASR checkpoint: every output format, agreeing with the SDK."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechserve import TranscriptionOptions
from speechserve.asr import RESPONSE_FORMATS
from speechserve.cli import TRANSCRIPT_FORMATS, main


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x = (np.random.default_rng(5).standard_normal(16000 * 33) * 0.1).astype(np.float32)  # two segments
    path = tmp_path_factory.mktemp("cli") / "speech.flac"
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="FLAC")
    path.write_bytes(buf.getvalue())
    return path


def _run(capsys, *argv: str) -> str:
    assert main(["transcribe", *argv]) == 0
    return capsys.readouterr().out


def test_text_streams_the_sdk_text(tiny_asr_checkpoint: Path, tiny_asr, wav: Path, capsys) -> None:
    out = _run(capsys, str(wav), "--model", str(tiny_asr_checkpoint), "--max-tokens", "3", "--language", "de")
    want = tiny_asr.transcribe(wav, TranscriptionOptions(language="de", max_tokens=3))
    assert out == want.text + "\n"


@pytest.mark.parametrize("fmt", ["json", "verbose_json", "srt", "vtt"])
def test_formats(tiny_asr_checkpoint: Path, wav: Path, tmp_path: Path, capsys, fmt: str) -> None:
    out_file = tmp_path / f"out.{fmt}"
    argv = [str(wav), "--model", str(tiny_asr_checkpoint), "--max-tokens", "3", "--format", fmt]
    assert _run(capsys, *argv, "-o", str(out_file)) == ""
    body = out_file.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(body)["usage"] == {"type": "duration", "seconds": 33.0}
    elif fmt == "verbose_json":
        segments = json.loads(body)["segments"]
        assert [(s["start"], s["end"]) for s in segments] == [(0.0, 30.0), (30.0, 33.0)]
    elif fmt == "srt":
        assert "1\n00:00:00,000 --> 00:00:30,000\n" in body and "00:00:30,000 --> 00:00:33,000" in body
    else:
        assert body.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:30.000\n")


def test_format_choices_are_the_server_formats() -> None:
    assert set(TRANSCRIPT_FORMATS) == set(RESPONSE_FORMATS)


def test_format_follows_the_output_extension(
    tiny_asr_checkpoint: Path, wav: Path, tmp_path: Path, capsys
) -> None:
    out_file = tmp_path / "talk.srt"
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    try:
        argv = [str(wav), "--model", str(tiny_asr_checkpoint), "--max-tokens", "2", "--threads", str(want)]
        assert _run(capsys, *argv, "-o", str(out_file)) == ""
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
    assert out_file.read_text(encoding="utf-8").startswith("1\n00:00:00,000 --> 00:00:30,000\n")


def test_errors(tiny_asr_checkpoint: Path, tiny_checkpoint: Path, wav: Path, tmp_path: Path, capsys) -> None:
    assert main(["transcribe", str(tmp_path / "nope.wav"), "--model", str(tiny_asr_checkpoint)]) == 2
    assert capsys.readouterr().err.endswith("nope.wav does not exist; give an existing file\n")
    assert main(["transcribe", str(wav), "--model", str(tiny_checkpoint)]) == 2
    assert "cannot transcribe" in capsys.readouterr().err
    assert main(["transcribe", str(wav), "--model", str(tiny_asr_checkpoint), "--language", "english"]) == 2
    assert "ISO-639-1" in capsys.readouterr().err
