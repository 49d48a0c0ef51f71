"""Tests for speechserve.audio.formats: the format table, extensions and content types."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechserve.audio import AUDIO_FORMATS, FORMATS, content_type, format_from_path, get_format
from speechserve.errors import InvalidRequest


def test_format_names() -> None:
    assert set(AUDIO_FORMATS) == {"mp3", "opus", "aac", "flac", "wav", "pcm", "pcm_f32le"}
    assert all(FORMATS[name].name == name for name in AUDIO_FORMATS)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("mp3", "audio/mpeg"),
        ("opus", "audio/ogg"),
        ("aac", "audio/aac"),
        ("flac", "audio/flac"),
        ("wav", "audio/wav"),
        ("pcm", "audio/pcm;rate=24000;channels=1;encoding=s16le"),
        ("pcm_f32le", "audio/pcm;rate=24000;channels=1;encoding=f32le"),
    ],
)
def test_content_type(fmt: str, expected: str) -> None:
    assert content_type(fmt, 24000) == expected


def test_content_type_uses_rate() -> None:
    assert content_type("pcm", 16000) == "audio/pcm;rate=16000;channels=1;encoding=s16le"
    assert content_type("mp3", 16000) == "audio/mpeg"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("a.wav", "wav"),
        ("dir/b.FLAC", "flac"),
        ("c.mp3", "mp3"),
        ("d.ogg", "opus"),
        ("e.opus", "opus"),
        ("f.aac", "aac"),
        ("g.pcm", "pcm"),
        ("h.raw", "pcm"),
        (Path("/tmp/x.Wav"), "wav"),
    ],
)
def test_format_from_path(path: str | Path, fmt: str) -> None:
    assert format_from_path(path) == fmt


@pytest.mark.parametrize("path", ["a.txt", "noext", "b.m4a", "c.wav.gz"])
def test_format_from_path_unknown(path: str) -> None:
    with pytest.raises(InvalidRequest, match="audio format"):
        format_from_path(path)


def test_unknown_format_name() -> None:
    with pytest.raises(InvalidRequest, match="Unsupported audio format 'ogg'"):
        get_format("ogg")
    with pytest.raises(InvalidRequest):
        content_type("vorbis", 24000)


def test_table_codecs_exist_in_pyav() -> None:
    import av

    for spec in FORMATS.values():
        assert spec.codec in av.codecs_available, spec
        assert spec.container in av.formats_available, spec
