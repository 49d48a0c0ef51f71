"""What the benchmarks measure about the machine itself: its memory copy bandwidth (the floor every
bandwidth-bound figure is compared with), peak memory (process RSS, GPU allocations) and a description.

A copy reads and writes every byte once, so ``copy_gb_per_s`` counts both (2 × size / time), as STREAM's
"copy" does. It is about the most a bandwidth-bound model can stream; ``weight_gb_per_s`` figures (weight
bytes *read* per second) sit below it.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time

import torch

COPY_BYTES = {"cuda": 1 << 30, "cpu": 256 << 20}
"""Size of the timed copy per device type: large enough to leave every cache (1 GiB on a GPU, 256 MiB here)."""


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_gb_per_s(device: torch.device, n_bytes: int | None = None, repeats: int = 5) -> float:
    """Median bandwidth of ``dst.copy_(src)`` over ``n_bytes`` (read + written bytes per second, in GB/s)."""
    n_bytes = n_bytes or COPY_BYTES.get(device.type, COPY_BYTES["cpu"])
    src = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up: first touch of the pages, kernel load
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        dst.copy_(src)
        synchronize(device)
        times.append(time.perf_counter() - start)
    del src, dst
    return 2 * n_bytes / statistics.median(times) / 1e9


def peak_rss_mb() -> float:
    """The process's peak resident set so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if platform.system() == "Darwin" else peak * 1024 / 1e6


def reset_peak_gpu(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gpu_mb(device: torch.device) -> float | None:
    """Peak GPU memory allocated by torch since the last reset, in MB (None off CUDA)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 1e6


def release(device: torch.device) -> None:
    """Give cached blocks back after a model or an engine is dropped, so the next one starts clean."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def describe(device: torch.device) -> dict[str, object]:
    """The hardware and software a figure was measured on."""
    info: dict[str, object] = {
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu": props.name,
            "gpu_memory_gb": round(props.total_memory / 1e9, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
        }
    return info


def hardware_line(device: torch.device) -> str:
    """One line for a table header."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return (
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"
    )
