"""The `speechserve` command line: serve (the OpenAI-compatible server), speak, voices, transcribe.

Start-up stays fast: building the parser imports nothing heavy (no torch, numpy or model code), so `--help`,
`<command> --help` and argument errors answer at once; a command imports what it needs when it runs. Every
user mistake is one line on stderr and exit status 2, and what can be checked before a model loads (input
files, output paths and formats, options, the model's kind) is checked first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

EXIT_USAGE = 2
"""Exit status of every user mistake (argparse's own)."""

TRANSCRIPT_FORMATS = ("text", "json", "srt", "vtt", "verbose_json")
"""`transcribe --format` choices: speechserve.asr.RESPONSE_FORMATS, spelled here so `--help` imports nothing."""
TRANSCRIPT_EXTENSIONS = {".txt": "text", ".json": "json", ".srt": "srt", ".vtt": "vtt"}
"""The transcript format an `-o` file name implies when `--format` is not given."""


COMMAND_OF = {"speech": "speak", "transcription": "transcribe"}
"""The command that serves each registry capability."""

ISQ_MODES = ("int8", "int4", "fp8")
"""`--isq` choices: speechserve.models.quantize.MODES, spelled here so `--help` imports nothing."""


class UsageError(Exception):
    """A mistake on the command line (a missing file, an unwritable output, the wrong kind of model)."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# --- checks that run before any model is loaded ---------------------------------------------------------


def _check_input_file(path: str, what: str) -> None:
    if not os.path.isfile(path):
        problem = "is a directory" if os.path.isdir(path) else "does not exist"
        raise UsageError(f"{what} {path} {problem}; give an existing file")


def _check_output_file(path: str) -> None:
    """The output can be created: its directory exists and is writable, and it is not a directory."""
    if os.path.isdir(path):
        raise UsageError(f"-o {path} is a directory; give a file name")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise UsageError(
            f"-o {path}: directory {directory} does not exist; create it first or choose another"
        )
    writable = os.access(path, os.W_OK) if os.path.exists(path) else os.access(directory, os.W_OK | os.X_OK)
    if not writable:
        raise UsageError(f"-o {path}: permission denied; choose a file you can write")


def check_device(device: str | None) -> None:
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device}: not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device is available here; use --device cpu")


def check_isq(isq: str | None, device: str | None) -> None:
    """Refuse, before any weights are read, an ISQ mode this machine cannot run (see
    :mod:`speechserve.models.quantize`: int8 runs anywhere, int4 and fp8 need CUDA, every CUDA mode torchao,
    fp8 a GPU of compute capability 8.9 or newer)."""
    if isq is None:
        return
    import torch

    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type != "cuda":
        if isq != "int8":
            raise UsageError(f"--isq {isq} needs a CUDA GPU; on the CPU use --isq int8")
        return
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        raise UsageError(f"--isq {isq} on a GPU needs torchao: pip install torchao")
    if isq == "fp8" and torch.cuda.get_device_capability(dev) < (8, 9):
        raise UsageError("--isq fp8 needs a GPU with compute capability 8.9 or newer (Ada, Hopper)")


def _check_capability(args: argparse.Namespace, capability: str, task: str) -> None:
    """Refuse a model that cannot do ``capability`` from its files alone (its config says its family), before
    its weights are read. Unrecognised checkpoints fall through to `speechserve.load`'s own error."""
    from speechserve import registry
    from speechserve.checkpoints.layout import detect_layout
    from speechserve.checkpoints.resolve import resolve_model_dir

    layout = detect_layout(resolve_model_dir(args.model, revision=args.revision))
    family = registry.identify(layout.format, layout.config)
    if family is not None and capability not in family.capabilities:
        can = ", ".join(sorted(family.capabilities)) or "nothing this command line runs"
        other = [f"`speechserve {cmd}`" for cap, cmd in COMMAND_OF.items() if cap in family.capabilities]
        hint = f"use it with {' or '.join(other)}, or pass" if other else "pass"
        raise UsageError(
            f"{args.model} is a {family.name} model ({can}): it cannot {task}; {hint} a model that can "
            f"(`speechserve dev families` lists what each family does)"
        )


def _load(args: argparse.Namespace, capability: str, task: str) -> Any:
    """Set the CPU threads, check device and model kind, then load the model."""
    import speechserve

    isq = getattr(args, "isq", None)  # `voices` has no --isq
    check_device(args.device)
    check_isq(isq, args.device)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    _check_capability(args, capability, task)
    return speechserve.load(
        args.model,
        device=args.device,
        dtype=args.dtype,
        tokenizer=args.tokenizer,
        revision=args.revision,
        isq=isq,
    )


# --- speak, voices ----------------------------------------------------------------------------------------


def _synthesize(chunks: Iterator[Any], max_frames: int) -> tuple[list[Any], float]:
    """Collect the chunks with a progress bar on stderr (frames, audio seconds, real-time factor)."""
    from tqdm import tqdm

    parts, audio_s, start = [], 0.0, time.perf_counter()
    with tqdm(total=max_frames, unit="frame", desc="speak", file=sys.stderr, dynamic_ncols=True) as bar:
        for chunk in chunks:
            parts.append(chunk.samples)
            audio_s += chunk.duration
            if audio_s:
                rtf = (time.perf_counter() - start) / audio_s
                bar.set_postfix_str(f"{audio_s:.2f} s audio, RTF {rtf:.2f}", refresh=False)
            bar.update(chunk.n_frames)
        bar.total = bar.n  # the model stopped before the cap: show a full bar
    return parts, time.perf_counter() - start


def cmd_speak(args: argparse.Namespace) -> int:
    _check_output_file(args.output)
    if args.ref_audio:
        _check_input_file(args.ref_audio, "--ref-audio")
    from speechserve.audio import format_from_path, write_audio_file
    from speechserve.options import SynthesisOptions

    format_from_path(args.output)
    opts = SynthesisOptions(seed=args.seed, max_frames=args.max_frames, cfg_alpha=args.cfg_alpha)
    tts = _load(args, "speech", "speak")
    ref = None
    if args.ref_audio:
        with open(args.ref_audio, "rb") as f:
            ref = f.read()
    stream = tts.synthesize(args.text, voice=args.voice, options=opts, ref_audio=ref)
    parts, elapsed = _synthesize(stream, args.max_frames)
    import numpy as np

    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    write_audio_file(args.output, samples, tts.sample_rate)
    seconds = len(samples) / tts.sample_rate
    rtf = elapsed / seconds if seconds else float("nan")
    print(
        f"wrote {args.output}: {seconds:.2f} s of audio at {tts.sample_rate} Hz in {elapsed:.2f} s (RTF {rtf:.2f})"
    )
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    tts = _load(args, "speech", "list preset voices")
    names = tts.voices
    if not names:
        print(f"{args.model} has no preset voices", file=sys.stderr)
    for name in names:
        print(name)
    return 0


# --- transcribe -------------------------------------------------------------------------------------------


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


# --- serve ------------------------------------------------------------------------------------------------

LOG_FORMAT = "%(asctime)s %(levelname)s:     %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def serve_log_config(level: str) -> dict:
    """uvicorn's logging config with a timestamp on every line: uvicorn's own and access lines, and every
    other logger (speechserve's, the engine's) through the root logger at ``level``."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["fmt"] = "%(asctime)s " + formatter["fmt"]
        formatter["datefmt"] = LOG_DATE_FORMAT
    config["formatters"]["plain"] = {"format": LOG_FORMAT, "datefmt": LOG_DATE_FORMAT}
    config["handlers"]["plain"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["plain"], "level": level.upper()}
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    import logging.config

    import uvicorn
    from pydantic import ValidationError

    from speechserve.checkpoints.resolve import resolve_model_dir
    from speechserve.server import ServerSettings, create_app

    given = {k: v for k, v in vars(args).items() if k in ServerSettings.model_fields and v not in (None, [])}
    try:
        settings = ServerSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid server settings: {problems} (flags or SPEECHSERVE_* variables)") from None
    check_isq(settings.isq, settings.device)
    for model in settings.model:  # fail (or download) before the server starts
        resolve_model_dir(model, revision=settings.revision)
    log_config = serve_log_config(settings.log_level)
    logging.config.dictConfig(log_config)  # timestamps from the first line; uvicorn applies it again
    app = create_app(settings)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, log_config=log_config
    )
    return 0


# --- the parser -------------------------------------------------------------------------------------------


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="local checkpoint directory, or a Hugging Face id (cached or downloaded)",
    )
    p.add_argument("--tokenizer", help="tekken.json to use instead of the checkpoint's own")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda when available)")
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: bf16 on cuda, fp32 on cpu)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit) when --model is a hub id")


def add_isq_arg(p: argparse.ArgumentParser, help_suffix: str = "") -> None:
    p.add_argument(
        "--isq",
        choices=ISQ_MODES,
        help="quantize the weights at load: int8 (CPU or GPU), int4 or fp8 (GPU only); default: none"
        + help_suffix,
    )


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's, one per core)")


def _add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the OpenAI-compatible server (speech, transcriptions, chat with audio)",
        description="Every option can also be set as an env var: --max-waiting → SPEECHSERVE_MAX_WAITING.",
    )
    serve.add_argument(
        "--model",
        action="append",
        help="checkpoint directory or Hugging Face id; repeat to serve several models, e.g. a TTS and an ASR "
        "model side by side (or SPEECHSERVE_MODEL, comma-separated)",
    )
    for flag in ("--tokenizer", "--device", "--dtype", "--revision"):
        serve.add_argument(flag, help=f"as for `speak` (SPEECHSERVE_{flag[2:].upper()})")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        help="accepted Bearer key (repeatable; default: no auth)",
    )
    serve.add_argument(
        "--served-model-name",
        action="append",
        help="name clients send as `model` (repeatable; with several --model, one per model, in order)",
    )
    serve.add_argument("--default-voice", help="voice for requests that name none")
    serve.add_argument("--max-input-chars", type=int, help="longest accepted input (default 4096)")
    serve.add_argument(
        "--segment-chars", type=int, help="long inputs are split into segments this long (400)"
    )
    serve.add_argument("--max-frames", type=int, help="cap on 80 ms frames per segment (default 2048)")
    serve.add_argument(
        "--max-upload-mb", type=float, help="largest audio upload / fetched file, MB (default 25)"
    )
    serve.add_argument(
        "--allowed-local-media-path", help="directory chat requests may read as file:// audio (default: none)"
    )
    serve.add_argument(
        "--asr-max-seq-len", type=int, help="KV positions per speech-to-text request (default 4096)"
    )
    serve.add_argument("--max-waiting", type=int, help="queued segments before 429 (default 64)")
    serve.add_argument("--max-batch", type=int, help="sequences generated together (default 32)")
    serve.add_argument(
        "--eager", action="store_const", const=True, help="no CUDA graphs / static shapes (debugging, parity)"
    )
    serve.add_argument("--cpu-threads", type=int, help="torch threads on CPU (default: cores − 1)")
    add_isq_arg(serve, " (SPEECHSERVE_ISQ)")
    serve.add_argument(
        "--cors-origin", dest="cors_origins", action="append", help="allowed CORS origin (repeatable)"
    )
    serve.add_argument("--log-level", help="debug, info, warning, error (default info)")
    serve.add_argument(
        "--no-warmup", dest="warmup", action="store_const", const=False, help="skip the start-up generation"
    )
    serve.set_defaults(func=cmd_serve)


def _add_speak_parsers(sub: Any) -> None:
    speak = sub.add_parser(
        "speak", help="synthesize text to an audio file (wav, flac, mp3, ogg/opus, aac, pcm)"
    )
    speak.add_argument("text")
    _add_model_args(speak)
    speak.add_argument("--voice", help="preset voice (see `speechserve voices`)")
    speak.add_argument("--ref-audio", help="reference recording to clone (needs codec-encoder weights)")
    speak.add_argument(
        "-o", "--output", default="speech.wav", help="output file; the format follows the extension"
    )
    speak.add_argument("--seed", type=int, help="seed for reproducible audio")
    speak.add_argument(
        "--max-frames", type=_positive_int, default=2048, help="cap on 80 ms frames (default 2048)"
    )
    speak.add_argument(
        "--cfg-alpha", type=float, default=1.2, help="classifier-free guidance weight (default 1.2)"
    )
    add_isq_arg(speak)
    _add_threads_arg(speak)
    speak.set_defaults(func=cmd_speak)

    voices = sub.add_parser("voices", help="list a model's preset voices")
    _add_model_args(voices)
    voices.set_defaults(func=cmd_voices)


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


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; imports no model code."""
    from speechserve.bench.cli import add_subcommands

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
