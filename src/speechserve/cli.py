"""The `speechserve` command line: serve (the OpenAI-compatible server), speak, voices, transcribe."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np


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


def _load(args: argparse.Namespace):
    import speechserve

    return speechserve.load(
        args.model, device=args.device, dtype=args.dtype, tokenizer=args.tokenizer, revision=args.revision
    )


def cmd_speak(args: argparse.Namespace) -> int:
    from speechserve.audio import format_from_path, write_audio_file
    from speechserve.options import SynthesisOptions

    format_from_path(args.output)  # fail on an unknown extension before loading anything
    tts = _load(args)
    ref = None
    if args.ref_audio:
        with open(args.ref_audio, "rb") as f:
            ref = f.read()
    opts = SynthesisOptions(seed=args.seed, max_frames=args.max_frames, cfg_alpha=args.cfg_alpha)
    start = time.perf_counter()
    chunks = list(tts.synthesize(args.text, voice=args.voice, options=opts, ref_audio=ref))
    elapsed = time.perf_counter() - start
    samples = np.concatenate([c.samples for c in chunks])
    write_audio_file(args.output, samples, tts.sample_rate)
    seconds = len(samples) / tts.sample_rate
    rtf = elapsed / seconds if seconds else float("nan")
    print(
        f"wrote {args.output}: {seconds:.2f} s of audio at {tts.sample_rate} Hz in {elapsed:.2f} s (RTF {rtf:.2f})"
    )
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    tts = _load(args)
    for name in tts.voices:
        print(name)
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from speechserve.asr import TranscriptionOptions, format_transcription
    from speechserve.errors import InvalidRequest, UnsupportedFeature

    if not os.path.isfile(args.file):
        raise InvalidRequest(f"no such audio file: {args.file}")
    opts = TranscriptionOptions(
        language=args.language, temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens
    )
    asr = _load(args)
    if not getattr(asr, "supports_transcription", False):
        raise UnsupportedFeature(f"{args.model} cannot transcribe (it is not a speech-to-text model)")
    stream = asr.transcribe_stream(args.file, opts)
    if args.format == "text" and not args.output:  # print text as it is generated
        for delta in stream:
            print(delta.text, end="", flush=True)
        print()
        return 0
    body = format_transcription(stream.result(), args.format, args.temperature)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(body)
    else:
        print(body)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from pydantic import ValidationError

    from speechserve.checkpoints.resolve import resolve_model_dir
    from speechserve.server import ServerSettings, create_app

    given = {k: v for k, v in vars(args).items() if k in ServerSettings.model_fields and v not in (None, [])}
    try:
        settings = ServerSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid server settings: {problems} (flags or SPEECHSERVE_* variables)") from None
    for model in settings.model:  # fail (or download) before the server starts
        resolve_model_dir(model, revision=settings.revision)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)
    return 0


def _add_serve_parser(sub) -> None:
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
    serve.add_argument(
        "--cors-origin", dest="cors_origins", action="append", help="allowed CORS origin (repeatable)"
    )
    serve.add_argument("--log-level", help="debug, info, warning, error (default info)")
    serve.add_argument(
        "--no-warmup", dest="warmup", action="store_const", const=False, help="skip the start-up generation"
    )
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechserve", description="Run open speech models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve_parser(sub)

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
    speak.add_argument("--max-frames", type=int, default=2048, help="cap on 80 ms frames (default 2048)")
    speak.add_argument(
        "--cfg-alpha", type=float, default=1.2, help="classifier-free guidance weight (default 1.2)"
    )
    speak.set_defaults(func=cmd_speak)

    voices = sub.add_parser("voices", help="list a model's preset voices")
    _add_model_args(voices)
    voices.set_defaults(func=cmd_voices)

    transcribe = sub.add_parser("transcribe", help="transcribe an audio file (any format FFmpeg reads)")
    transcribe.add_argument("file")
    _add_model_args(transcribe)
    transcribe.add_argument(
        "--language", help="ISO-639-1 code of the speech (default: detected by the model)"
    )
    transcribe.add_argument(
        "--format",
        default="text",
        choices=["text", "json", "srt", "vtt", "verbose_json"],
        help="output format",
    )
    transcribe.add_argument("-o", "--output", help="write to this file instead of stdout")
    transcribe.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    transcribe.add_argument("--seed", type=int, help="seed for sampling when temperature > 0")
    transcribe.add_argument("--max-tokens", type=int, help="cap on generated tokens per 30 s segment")
    transcribe.set_defaults(func=cmd_transcribe)

    from speechserve.bench.cli import add_subcommands

    add_subcommands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `speechserve` console script."""
    from speechserve.errors import SpeechServeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpeechServeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"speechserve: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
