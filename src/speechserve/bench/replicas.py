"""Throughput of one process vs N Ray Serve replicas on this machine: the same closed-loop streamed-speech load
against ``speechserve serve`` (one process, no Ray) and against 1, 2 … replicas on a local Ray.

    python -m speechserve.bench.replicas --model DIR --replicas 1,2 --concurrency 8 --requests 48

Each configuration runs as its own ``speechserve serve`` process (the replicas' children of it), so the load
generator here shares nothing with the server but the machine. Reported per configuration: requests per
second, seconds of audio generated per wall second, median and p90 time to first audio, errors; the median
of ``--repeats`` runs. Needs the ``ray`` extra for ``--replicas``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import httpx

from speechserve.bench.metrics import percentile

BYTES_PER_SECOND = 24000 * 2  # int16 mono at 24 kHz


@dataclass
class LoadResult:
    """One run of the closed-loop load against one configuration."""

    config: str
    requests: int
    errors: int
    wall_s: float
    requests_per_s: float
    audio_s_per_s: float
    ttfa_p50_ms: float
    ttfa_p90_ms: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, replicas: int | None, cpu_threads: int, log: str) -> subprocess.Popen:
    """``speechserve serve`` in its own process group (so its Ray children stop with it), output to ``log``."""
    command = [sys.executable, "-m", "speechserve", "serve", "--model", model, "--port", str(port)]
    command += ["--cpu-threads", str(cpu_threads), "--log-level", "warning"]
    if replicas:
        command += ["--replicas", str(replicas)]
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": str(cpu_threads)}
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=env, start_new_session=True, stdout=out, stderr=out)


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} was not ready within {timeout} s")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


async def _one(client: httpx.AsyncClient, body: dict) -> tuple[float | None, int]:
    """(time to first audio, or None on error; audio bytes) of one streamed speech request."""
    start = time.perf_counter()
    first, size = None, 0
    try:
        async with client.stream("POST", "/v1/audio/speech", json=body) as response:
            if response.status_code != 200:
                return None, 0
            async for data in response.aiter_raw():
                first = first or time.perf_counter() - start
                size += len(data)
    except httpx.HTTPError:
        return None, 0
    return first, size


async def closed_loop(url: str, concurrency: int, requests: int, max_tokens: int) -> tuple[list, float]:
    """``requests`` streamed speech requests, ``concurrency`` at a time; (their results, wall seconds)."""
    body = {"model": "tts-1", "voice": "casual_male", "response_format": "pcm", "max_tokens": max_tokens}
    body["input"] = "The quick brown fox jumps over the lazy dog, again and again, until the sun goes down."
    queue = list(range(requests))
    results: list[tuple[float | None, int]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            seed = queue.pop()
            results.append(await _one(client, body | {"seed": seed}))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
        return results, time.perf_counter() - start


def measure(args: argparse.Namespace, replicas: int | None) -> LoadResult:
    """Start one configuration, warm it up, run the load ``--repeats`` times; the median run."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args.model, port, replicas, args.cpu_threads, args.server_log)
    try:
        wait_ready(url, server)
        asyncio.run(closed_loop(url, args.concurrency, args.concurrency, args.max_tokens))  # warm-up
        runs = [asyncio.run(closed_loop(url, args.concurrency, args.requests, args.max_tokens))]
        runs += [
            asyncio.run(closed_loop(url, args.concurrency, args.requests, args.max_tokens))
            for _ in range(args.repeats - 1)
        ]
    finally:
        stop_server(server)
    results, wall = sorted(runs, key=lambda run: run[1])[len(runs) // 2]
    ok = [(ttfa, size) for ttfa, size in results if ttfa is not None]
    ttfa_ms = [ttfa * 1000 for ttfa, _ in ok] or [float("nan")]
    return LoadResult(
        config=f"{replicas} replica(s) on Ray" if replicas else "one process (no Ray)",
        requests=len(results),
        errors=len(results) - len(ok),
        wall_s=round(wall, 2),
        requests_per_s=round(len(ok) / wall, 3),
        audio_s_per_s=round(sum(size for _, size in ok) / BYTES_PER_SECOND / wall, 3),
        ttfa_p50_ms=round(statistics.median(ttfa_ms), 1),
        ttfa_p90_ms=round(percentile(ttfa_ms, 90), 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m speechserve.bench.replicas", description=__doc__)
    parser.add_argument("--model", required=True, help="a TTS checkpoint (directory or hub id)")
    parser.add_argument("--replicas", default="1,2", help="replica counts to compare (default 1,2)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-process run")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--requests", type=int, default=48, help="requests per run (default 48)")
    parser.add_argument("--max-tokens", type=int, default=50, help="80 ms frames per request (default 50)")
    parser.add_argument("--cpu-threads", type=int, default=1, help="torch threads per server process (1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; median (3)")
    parser.add_argument("--server-log", default=os.devnull, help="append the servers' output here")
    args = parser.parse_args(argv)
    counts = [None] * (not args.no_baseline) + [int(n) for n in args.replicas.split(",") if n]
    for replicas in counts:
        print(json.dumps(asdict(measure(args, replicas))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
