"""`speechserve transcribe`."""

from __future__ import annotations

import argparse
import os
from typing import Any

from speechserve.cli.common import (
    UsageError,
    _add_model_args,
    _add_threads_arg,
    _check_input_file,
    _check_output_file,
    _load,
    add_isq_arg,
)

TRANSCRIPT_FORMATS = ("text", "json", "srt", "vtt", "verbose_json")
"""`transcribe --format` choices: speechserve.asr.RESPONSE_FORMATS, spelled here so `--help` imports nothing."""


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


def _add_transcribe_parser(sub: Any) -> None:
    transcribe = sub.add_parser("transcribe", help="transcribe an audio file (any format FFmpeg reads)")
    transcribe.add_argument("file")
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
