"""The `speechserve` command line: serve (the OpenAI-compatible server), speak, voices, transcribe.

Start-up stays fast: building the parser imports nothing heavy (no torch, numpy or model code), so `--help`,
`<command> --help` and argument errors answer at once; a command imports what it needs when it runs. Every
user mistake is one line on stderr and exit status 2, and what can be checked before a model loads (input
files, output paths and formats, options, the model's kind) is checked first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from speechserve.cli.common import (
    EXIT_USAGE,
    ISQ_MODES,
    UsageError,
    add_isq_arg,
    check_device,
    check_isq,
)
from speechserve.cli.serve import serve_log_config
from speechserve.cli.transcribe import TRANSCRIPT_FORMATS

__all__ = [
    "EXIT_USAGE",
    "ISQ_MODES",
    "TRANSCRIPT_FORMATS",
    "UsageError",
    "add_isq_arg",
    "build_parser",
    "check_device",
    "check_isq",
    "main",
    "serve_log_config",
]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; imports no model code."""
    from speechserve.bench.cli import add_subcommands
    from speechserve.cli.serve import _add_serve_parser
    from speechserve.cli.speak import _add_speak_parsers
    from speechserve.cli.transcribe import _add_transcribe_parser

    parser = argparse.ArgumentParser(prog="speechserve", description="Run open speech models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve_parser(sub)
    _add_speak_parsers(sub)
    _add_transcribe_parser(sub)
    add_subcommands(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `speechserve` console script."""
    from speechserve.errors import SpeechServeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, SpeechServeError, ValueError, OSError) as exc:  # ValidationError is a ValueError
        print(f"speechserve: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("speechserve: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
