"""The `speechserve` command line: speak, voices (and, as they land, serve, transcribe, bench)."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechserve", description="Run open speech models.")
    sub = parser.add_subparsers(dest="command", required=True)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `speechserve` console script."""
    from speechserve.errors import SpeechServeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpeechServeError, ValueError) as exc:
        print(f"speechserve: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
