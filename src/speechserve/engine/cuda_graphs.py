"""CUDA graphs for any family's hot step, in one place: batch buckets and capture/replay.

A family's graphed runner keeps static input/output buffers per padded batch size (a bucket: 1, 2, 4, 8, …)
and asks :class:`GraphRunner` to run a static call: on CUDA the call is captured once per (bucket, key) and
replayed every step afterwards — no Python per layer, no allocator, no host syncs inside the step. With
``use_graphs=False`` (CPU, or ``--eager``) the same padded static-buffer code runs eagerly, which is how the
logic is tested without a GPU. Rows beyond the real batch are padding whose outputs are dropped (their KV
writes go to a scratch slot nobody reads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def bucket_sizes(n_slots: int, buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> tuple[int, ...]:
    """The padded batch sizes used for ``n_slots`` sequences: the default ladder up to ``n_slots``,
    ending exactly at ``n_slots``."""
    sizes = tuple(b for b in buckets if b <= n_slots) or (n_slots,)
    return sizes if sizes[-1] == n_slots else (*sizes, n_slots)


class GraphRunner:
    """Captures and replays static calls per (bucket, key); every graph shares one memory pool."""

    def __init__(self, use_graphs: bool, device: torch.device) -> None:
        self.use_graphs = use_graphs and device.type == "cuda"
        self._graphs: dict[tuple[Any, str], torch.cuda.CUDAGraph] = {}
        self._pool = None

    def run(self, bucket: Any, key: str, fn: Callable[[], None]) -> None:
        """Run ``fn`` (which reads and writes only ``bucket``'s static buffers), captured on first use."""
        if not self.use_graphs:
            fn()
            return
        graph = self._graphs.get((id(bucket), key))
        if graph is None:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                fn()  # warm-up outside capture (allocations, lazy inits such as a flow time table)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                fn()
            self._pool = graph.pool()
            self._graphs[(id(bucket), key)] = graph
        graph.replay()
