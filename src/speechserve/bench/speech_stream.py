"""`speechserve bench speech-stream`: time to first audio of ``WS /v1/audio/speech/stream`` while an "LLM"
writes the text, against the one-shot ``POST /v1/audio/speech``.

A server runs in this process (uvicorn on a free local port, one model). Each run:

1. **stream**: a websocket session (pcm, ``stream_audio``, ``split_granularity`` clause) gets the text token by
   token at ``--tokens-per-s``; the clock starts when the token that ends the first clause has been sent (the
   earliest moment any server could know the clause is complete) and stops at the first audio frame;
2. **one-shot**: ``POST /v1/audio/speech`` of that first clause alone, streamed pcm: request sent → first
   audio byte (what a client that cut the clause itself would get);
3. **whole text**: what a client that waits for the whole text gets, counted from the same moment: the time
   the rest of the text takes to be written, plus the one-shot TTFA of the whole text.

Every figure is the median over ``--runs`` runs, interleaved. Random checkpoints never say END, so each
sentence is capped at ``--frames`` frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

TEXT = (
    "Sure, I can help with that. The train leaves at 9.45 from platform 3, and Dr. Lee will meet you there; "
    "bring your ticket, e.g. the printed one. See you soon!"
)
"""A voice agent's answer: a first clause, then numbers and abbreviations that must not end a sentence."""


@dataclass(frozen=True)
class RunResult:
    stream_ms: float
    """First audio frame − the token ending the first clause sent."""
    chars_unwritten: int
    """Characters of the text not yet sent when the first audio arrived."""
    one_shot_ms: float
    whole_text_ms: float


def tokens_of(text: str) -> list[str]:
    """LLM-like tokens: each word with its leading space; punctuation as tokens of its own."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        lead = " " if i else ""
        core = word.rstrip(",.;:!?")
        out += [lead + core] if core else []
        out += list(word[len(core) :])
    return out


def first_clause(tokens: list[str]) -> tuple[int, str]:
    """(index of the token after which the first clause is known to have ended, the clause)."""
    from speechserve.tts.segmentation import LiveSegmenter

    seg = LiveSegmenter("clause")
    for i, token in enumerate(tokens):
        units = seg.feed(token)
        if units:
            return i, units[0]
    raise ValueError("the text has no clause that ends before its last token; give a longer --text")


async def _stream_run(url: str, tokens: list[str], gap: float, config: dict[str, Any]) -> tuple[float, int]:
    from websockets.asyncio.client import connect

    end_index, _ = first_clause(tokens)
    sent_chars, clause_end = 0, 0.0
    first_audio: asyncio.Future[tuple[float, int]] = asyncio.get_running_loop().create_future()
    async with connect(url.replace("http", "ws", 1) + "/v1/audio/speech/stream", max_size=None) as ws:
        await ws.send(json.dumps({"type": "session.config", **config}))
        json.loads(await ws.recv())  # session.updated

        async def listen() -> None:
            async for message in ws:
                if isinstance(message, bytes) and not first_audio.done():
                    first_audio.set_result((time.perf_counter(), sum(map(len, tokens)) - sent_chars))
                elif isinstance(message, str) and json.loads(message)["type"] == "session.done":
                    return

        listener = asyncio.create_task(listen())
        for i, token in enumerate(tokens):
            await ws.send(json.dumps({"type": "input.text", "text": token}))
            sent_chars += len(token)
            if i == end_index:
                clause_end = time.perf_counter()
            await asyncio.sleep(gap)
        await ws.send(json.dumps({"type": "input.done"}))
        await listener
    at, unwritten = first_audio.result()
    return (at - clause_end) * 1000, unwritten


async def _one_shot_ms(url: str, text: str, config: dict[str, Any]) -> float:
    import httpx

    body = {
        "input": text,
        "response_format": "pcm",
        "seed": config["seed"],
        "max_tokens": config["max_tokens"],
    }
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        start = time.perf_counter()
        async with client.stream("POST", "/v1/audio/speech", json=body) as response:
            response.raise_for_status()
            first = None
            async for data in response.aiter_raw():
                if data and first is None:
                    first = time.perf_counter()
    return ((first or time.perf_counter()) - start) * 1000


async def measure(url: str, text: str, runs: int, tokens_per_s: float, frames: int) -> list[RunResult]:
    """``runs`` interleaved runs of the three measurements (see the module docstring)."""
    tokens, gap = tokens_of(text), 1.0 / tokens_per_s
    end_index, clause = first_clause(tokens)
    config = {"response_format": "pcm", "stream_audio": True, "split_granularity": "clause", "seed": 0,
              "max_tokens": frames}  # fmt: skip
    writing_rest = (len(tokens) - 1 - end_index) * gap * 1000
    results = []
    for _ in range(runs):
        stream_ms, unwritten = await _stream_run(url, tokens, gap, config)
        one_shot = await _one_shot_ms(url, clause, config)
        whole = writing_rest + await _one_shot_ms(url, text, config)
        results.append(RunResult(stream_ms, unwritten, one_shot, whole))
    return results


def cmd_bench_speech_stream(args: argparse.Namespace) -> int:
    import torch

    from speechserve.bench.cli import _write, _writer_family
    from speechserve.bench.machine import hardware_line
    from speechserve.server import ServerSettings, create_app
    from speechserve.testing.live_server import LiveServer

    model = args.model or _write(
        _writer_family(None), tempfile.mkdtemp(prefix="speechserve-bench-"), args.preset, 0
    )
    name = os.path.basename(os.path.normpath(args.model)) if args.model else f"random {args.preset}"
    settings = ServerSettings(model=model, max_frames=args.frames, device=args.device, log_level="warning")
    with LiveServer(create_app(settings)) as server:
        device = torch.device(getattr(server.app.state.registry.models[0].pipeline, "device", "cpu"))
        results = asyncio.run(measure(server.url, args.text, args.runs, args.tokens_per_s, args.frames))
    med = {k: statistics.median(getattr(r, k) for r in results) for k in RunResult.__dataclass_fields__}
    _, clause = first_clause(tokens_of(args.text))
    print(f"# speech-stream TTFA: {name} on {args.hardware or hardware_line(device)}; first clause {clause!r}; "
          f"{args.tokens_per_s:g} tokens/s; medians of {args.runs} runs")  # fmt: skip
    print("| checkpoint | WS stream: end of first clause → first audio ms | one-shot TTFA of that clause ms "
          "| wait for the whole text, then one-shot ms | characters still unwritten at first audio |")  # fmt: skip
    print("|---|---|---|---|---|")
    print(f"| {name} | {med['stream_ms']:.0f} | {med['one_shot_ms']:.0f} | {med['whole_text_ms']:.0f} | "
          f"{med['chars_unwritten']:.0f} of {len(args.text)} |")  # fmt: skip
    return 0


def add_subcommand(bsub: argparse._SubParsersAction) -> None:
    """Register ``bench speech-stream`` (imports nothing heavy)."""
    from speechserve.bench.cli import PRESETS

    ss = bsub.add_parser(
        "speech-stream",
        help="TTFA of WS /v1/audio/speech/stream from the end of the first clause vs the one-shot endpoint",
    )
    ss.add_argument("--model", help="checkpoint (default: a random one of --preset)")
    ss.add_argument("--preset", default="tiny", choices=PRESETS)
    ss.add_argument("--device", help="cpu, cuda … (default: cuda when available)")
    ss.add_argument("--runs", type=int, default=5, help="runs; every figure is their median")
    ss.add_argument("--tokens-per-s", type=float, default=30.0, help="pace of the simulated LLM")
    ss.add_argument("--frames", type=int, default=8, help="frames per sentence (random weights never END)")
    ss.add_argument("--text", default=TEXT)
    ss.add_argument("--hardware", help="hardware line for the table header (default: detected)")
    ss.set_defaults(func=cmd_bench_speech_stream)
