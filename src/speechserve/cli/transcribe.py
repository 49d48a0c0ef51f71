"""`speechserve transcribe`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

from speechserve.cli.common import (
    UsageError,
    _add_model_args,
    _add_threads_arg,
    _check_capability,
    _check_input_file,
    _check_output_file,
    _load,
    _positive_int,
    add_isq_arg,
)

TRANSCRIPT_FORMATS = ("text", "json", "srt", "vtt", "verbose_json")
"""`transcribe --format` choices: speechserve.asr.RESPONSE_FORMATS, spelled here so `--help` imports nothing."""


STDIN = "-"
"""The `transcribe` file argument that reads raw PCM (s16le mono at ``--rate``) from stdin (with ``--stream``)."""
DEFAULT_STDIN_RATE = 16_000
"""Sample rate of raw PCM on stdin when ``--rate`` is not given (the model's own)."""
PIECE_SECONDS = 0.08
"""Audio fed to a streaming transcriber at a time: one 80 ms decoder position."""


TRANSCRIPT_EXTENSIONS = {".txt": "text", ".json": "json", ".srt": "srt", ".vtt": "vtt"}
"""The transcript format an `-o` file name implies when `--format` is not given."""


def _transcript_format(args: argparse.Namespace) -> str:
    """`--format`, else the one the `-o` extension names, else text."""
    if args.format is not None:
        return args.format
    if not args.output:
        return "text"
    ext = os.path.splitext(args.output)[1].lower()
    if ext not in TRANSCRIPT_EXTENSIONS:
        known = " ".join(TRANSCRIPT_EXTENSIONS)
        raise UsageError(
            f"-o {args.output}: cannot tell the format from {ext or 'no extension'} ({known}); pass --format"
        )
    return TRANSCRIPT_EXTENSIONS[ext]


def cmd_transcribe(args: argparse.Namespace) -> int:
    if args.stream:
        return cmd_transcribe_stream(args)
    if args.file == STDIN:
        raise UsageError("reading raw PCM from stdin (`-`) needs --stream")
    _check_input_file(args.file, "audio file")
    if args.output:
        _check_output_file(args.output)
    fmt = _transcript_format(args)
    from speechserve.asr import TranscriptionOptions, format_transcription

    opts = TranscriptionOptions(
        language=args.language, temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens
    )
    asr = _load(args, "transcription", "transcribe")
    stream = asr.transcribe_stream(args.file, opts)
    if fmt == "text" and not args.output:  # print text as it is generated
        for delta in stream:
            print(delta.text, end="", flush=True)
        print()
        return 0
    body = format_transcription(stream.result(), fmt, args.temperature)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(body)
    else:
        print(body)
    return 0


def _check_stream_args(args: argparse.Namespace) -> None:
    """What `--stream` cannot be combined with, refused before any model loads."""
    if args.output or args.format not in (None, "text"):
        raise UsageError("--stream prints text as it is recognised: it takes no -o or --format")
    if args.file != STDIN:
        if args.rate is not None:
            raise UsageError("--rate applies to raw PCM on stdin (`-`); a file says its own rate")
        _check_input_file(args.file, "audio file")
    # A bad --delay is the model's to judge (its levels and steps): pipe.stream() raises InvalidRequest, one
    # line and exit 2, right after loading and before any audio is read.


def _file_pieces(pipe: Any, path: str) -> Iterator[Any]:
    """The whole file decoded (to the model's rate), in 80 ms pieces."""
    samples = pipe.load_audio(path)
    step = round(pipe.sample_rate * PIECE_SECONDS)
    for start in range(0, len(samples), step):
        yield samples[start : start + step]


def _stdin_pieces(rate: int) -> Iterator[Any]:
    """Raw s16le mono PCM from stdin as it arrives (up to 80 ms at a time), until end of input."""
    import numpy as np

    stream, want, rest = sys.stdin.buffer, 2 * round(rate * PIECE_SECONDS), b""
    while data := stream.read1(want):
        data, cut = rest + data, (len(rest) + len(data)) // 2 * 2
        data, rest = data[:cut], data[cut:]
        if data:
            yield np.frombuffer(data, dtype="<i2")


def cmd_transcribe_stream(args: argparse.Namespace) -> int:
    """Feed the audio through the model's streaming transcriber and print the text as it comes; Ctrl-C ends
    the audio there (the text it completes is still printed)."""
    _check_stream_args(args)
    _check_capability(args, "realtime", "transcribe a stream (--stream)")
    from speechserve.asr import TranscriptionOptions

    opts = TranscriptionOptions(
        language=args.language, temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens
    )
    pipe = _load(args, "transcription", "transcribe")
    rate = (args.rate or DEFAULT_STDIN_RATE) if args.file == STDIN else pipe.sample_rate
    live = pipe.stream(delay=args.delay, options=opts, sample_rate=rate)
    pieces = _stdin_pieces(rate) if args.file == STDIN else _file_pieces(pipe, args.file)
    try:
        for piece in pieces:
            for delta in live.push(piece):
                print(delta.text, end="", flush=True)
    except KeyboardInterrupt:
        pass  # the end of a live recording
    for delta in live.finish():
        print(delta.text, end="", flush=True)
    print()
    return 0


def _add_transcribe_parser(sub: Any) -> None:
    transcribe = sub.add_parser("transcribe", help="transcribe an audio file (any format FFmpeg reads)")
    transcribe.add_argument("file", help="audio file; `-` with --stream: raw PCM (s16le mono) on stdin")
    transcribe.add_argument(
        "--stream",
        action="store_true",
        help="realtime models: feed the audio through the streaming transcriber (80 ms at a time) and print "
        "text as it is recognised",
    )
    transcribe.add_argument(
        "--rate", type=_positive_int, help="sample rate of raw PCM on stdin (`-`), Hz (default 16000)"
    )
    transcribe.add_argument(
        "--delay",
        help="with --stream: how far text runs behind the audio, ms (80…1200 in steps of 80, or 2400) or "
        "minimal|low|medium|high|xhigh (default: the model's, 480 ms for Voxtral Realtime)",
    )
    _add_model_args(transcribe)
    transcribe.add_argument(
        "--language", help="ISO-639-1 code of the speech (default: detected by the model)"
    )
    transcribe.add_argument(
        "--format",
        choices=TRANSCRIPT_FORMATS,
        help="output format (default: from the -o extension .txt .json .srt .vtt, else text)",
    )
    transcribe.add_argument("-o", "--output", help="write to this file instead of stdout")
    transcribe.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    transcribe.add_argument("--seed", type=int, help="seed for sampling when temperature > 0")
    transcribe.add_argument("--max-tokens", type=int, help="cap on generated tokens per 30 s segment")
    add_isq_arg(transcribe)
    _add_threads_arg(transcribe)
    transcribe.set_defaults(func=cmd_transcribe)
