"""HTTP streaming load generator: open-loop Gamma(burstiness) arrivals at each rate against
`/v1/audio/speech` (raw pcm, streamed), measuring TTFA and streaming viability as VoxServe does."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

from speechserve.bench.metrics import chunk_viability, summarize
from speechserve.bench.offline import TEXT_500

BYTES_PER_SECOND = 24000 * 2  # int16 mono at 24 kHz


@dataclass
class RequestTrace:
    start: float
    arrivals: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    error: str | None = None


async def _one(client: httpx.AsyncClient, body: dict, headers: dict) -> RequestTrace:
    trace = RequestTrace(time.perf_counter())
    try:
        async with client.stream("POST", "/v1/audio/speech", json=body, headers=headers) as resp:
            if resp.status_code != 200:
                trace.error = f"HTTP {resp.status_code}"
                return trace
            async for data in resp.aiter_raw():
                if data:
                    trace.arrivals.append(time.perf_counter())
                    trace.sizes.append(len(data))
    except httpx.HTTPError as exc:
        trace.error = type(exc).__name__
    return trace


async def run_rate(
    url: str, rate: float, duration: float, seed: int, body: dict, headers: dict, burstiness: float
) -> dict:
    """All requests arriving in ``duration`` seconds at ``rate`` req/s; awaits them all, then aggregates."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0)) as client:
        tasks, t = [], 0.0
        start = time.perf_counter()
        while True:
            t += rng.gammavariate(burstiness, 1.0 / (burstiness * rate))
            if t > duration:
                break
            await asyncio.sleep(max(0.0, start + t - time.perf_counter()))
            tasks.append(asyncio.create_task(_one(client, body, headers)))
        traces = await asyncio.gather(*tasks)
    ok = [tr for tr in traces if tr.error is None and tr.arrivals]
    ttfa = [(tr.arrivals[0] - tr.start) * 1000 for tr in ok]
    per_chunk, all_chunks = [], []
    for tr in ok:
        v = chunk_viability(tr.arrivals, [n / BYTES_PER_SECOND for n in tr.sizes])
        if v is not None:
            per_chunk.append(v[0])
            all_chunks.append(100.0 if v[1] else 0.0)
    return {
        "rate": rate,
        "requests": len(traces),
        "errors": len(traces) - len(ok),
        "ttfa_ms": summarize(ttfa),
        "viability_per_chunk": summarize(per_chunk)["mean"],
        "viability_all_chunks": summarize(all_chunks)["mean"],
    }


async def run_sweep(
    url: str, rates: list[float], duration: float, seed: int, model: str | None, voice: str, text: str | None,
    api_key: str | None, burstiness: float, max_tokens: int | None = None,
) -> list[dict]:  # fmt: skip
    body = {"input": text or TEXT_500, "voice": voice, "response_format": "pcm", "stream_format": "audio"}
    if max_tokens:
        body["max_tokens"] = max_tokens  # frames: bounds each request (random weights rarely say END)
    if model:
        body["model"] = model
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    print("| rate req/s | requests | errors | TTFA mean ms | p50 | p90 | p95 | p99 | viability per-chunk % | viability all-chunks % |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for rate in rates:
        r = await run_rate(url, rate, duration, seed, body, headers, burstiness)
        t = r["ttfa_ms"]
        print(f"| {rate} | {r['requests']} | {r['errors']} | {t['mean']:.0f} | {t['p50']:.0f} | {t['p90']:.0f} | "
              f"{t['p95']:.0f} | {t['p99']:.0f} | {r['viability_per_chunk']:.1f} | {r['viability_all_chunks']:.1f} |", flush=True)  # fmt: skip
        results.append(r)
    return results
