"""`speechserve speak` and `speechserve voices`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import Any

from speechserve.cli.common import (
    _add_model_args,
    _add_threads_arg,
    _check_input_file,
    _check_output_file,
    _load,
    _positive_int,
    add_codec_arg,
    add_isq_arg,
)


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
    add_codec_arg(speak)
    add_isq_arg(speak)
    _add_threads_arg(speak)
    speak.set_defaults(func=cmd_speak)

    voices = sub.add_parser("voices", help="list a model's preset voices")
    _add_model_args(voices)
    add_codec_arg(voices)
    voices.set_defaults(func=cmd_voices)
