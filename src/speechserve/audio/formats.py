"""The table of output audio formats: names, MIME types, file extensions and PyAV muxer/codec names.

This module owns the mapping from a response format name (``"mp3"``, ``"opus"``, ...) to everything the
encoder and the HTTP layer need to know about it. It does no encoding itself (see ``encode.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from speechserve.errors import InvalidRequest

AudioFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm", "pcm_f32le"]
"""Names of the supported output formats."""


@dataclass(frozen=True)
class FormatSpec:
    """How one output format is produced and labelled.

    ``container``/``codec`` are PyAV (FFmpeg) muxer and encoder names. ``sample_fmt`` is the FFmpeg
    sample format fed to the encoder, ``bit_rate`` the target bit rate of lossy codecs (``None``: codec
    default or lossless) and ``codec_rate`` a sample rate the codec is always run at (``None``: the
    input rate, or the nearest rate the codec supports). ``raw`` formats are headerless sample dumps.
    ``muxer_options`` are extra FFmpeg muxer options (e.g. a short Ogg page duration so streamed pages
    leave the muxer every ~100 ms instead of piling up).
    """

    name: str
    media_type: str
    extension: str
    container: str
    codec: str
    sample_fmt: str
    bit_rate: int | None = None
    codec_rate: int | None = None
    raw: bool = False
    muxer_options: tuple[tuple[str, str], ...] = ()


FORMATS: dict[str, FormatSpec] = {
    "mp3": FormatSpec("mp3", "audio/mpeg", "mp3", "mp3", "libmp3lame", "fltp", bit_rate=64_000),
    # Ogg Opus; libopus only takes 8/12/16/24/48 kHz and Ogg Opus always decodes at 48 kHz.
    "opus": FormatSpec(
        "opus",
        "audio/ogg",
        "opus",
        "ogg",
        "libopus",
        "flt",
        bit_rate=48_000,
        codec_rate=48_000,
        muxer_options=(("page_duration", "100000"),),  # microseconds
    ),
    # Raw AAC-LC in ADTS framing, FFmpeg's native encoder.
    "aac": FormatSpec("aac", "audio/aac", "aac", "adts", "aac", "fltp", bit_rate=64_000),
    "flac": FormatSpec("flac", "audio/flac", "flac", "flac", "flac", "s16"),
    "wav": FormatSpec("wav", "audio/wav", "wav", "wav", "pcm_s16le", "s16"),
    "pcm": FormatSpec("pcm", "audio/pcm", "pcm", "s16le", "pcm_s16le", "s16", raw=True),
    "pcm_f32le": FormatSpec("pcm_f32le", "audio/pcm", "f32", "f32le", "pcm_f32le", "flt", raw=True),
}

AUDIO_FORMATS: tuple[str, ...] = tuple(FORMATS)
"""All supported output format names, in table order."""

_RAW_ENCODING = {"pcm": "s16le", "pcm_f32le": "f32le"}

_EXTENSIONS = {
    ".wav": "wav",
    ".wave": "wav",
    ".flac": "flac",
    ".mp3": "mp3",
    ".ogg": "opus",
    ".opus": "opus",
    ".aac": "aac",
    ".pcm": "pcm",
    ".raw": "pcm",
    ".f32": "pcm_f32le",
}


def get_format(fmt: str) -> FormatSpec:
    """Return the :class:`FormatSpec` of ``fmt``; raise :class:`InvalidRequest` for an unknown name."""
    spec = FORMATS.get(fmt) if isinstance(fmt, str) else None
    if spec is None:
        raise InvalidRequest(
            f"Unsupported audio format {fmt!r}; supported formats: {', '.join(AUDIO_FORMATS)}"
        )
    return spec


def content_type(fmt: str, sample_rate: int) -> str:
    """MIME content type of audio in format ``fmt`` at ``sample_rate`` Hz.

    Raw PCM formats carry their parameters, e.g. ``audio/pcm;rate=24000;channels=1;encoding=s16le``.
    """
    spec = get_format(fmt)
    if spec.raw:
        return f"{spec.media_type};rate={int(sample_rate)};channels=1;encoding={_RAW_ENCODING[spec.name]}"
    return spec.media_type


def format_from_path(path: str | os.PathLike[str]) -> str:
    """Pick the output format name from a file name's extension (case-insensitive).

    ``.wav .flac .mp3 .ogg/.opus .aac .pcm/.raw`` (and ``.f32`` for raw float32) are recognised;
    anything else raises :class:`InvalidRequest`.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    fmt = _EXTENSIONS.get(ext)
    if fmt is None:
        known = " ".join(sorted(_EXTENSIONS))
        raise InvalidRequest(
            f"Cannot tell the audio format of {os.fspath(path)!r}; known extensions: {known}"
        )
    return fmt
