"""The small-row matmul kernel (``kernels/small_m.cpp``): built once per machine, called through ctypes.

Two forms: fp32 weights (:func:`linear`, chosen per shape and row count by :mod:`.fast_linear`), and int8
weights with one scale per output row (:func:`linear_int8`, ISQ ``int8``'s CPU path: activations rounded per
row to int16, products with ``vpmaddwd``, the weight packed in 8-row blocks; on a 9216×3072 weight 2.0 ms at
one row vs fbgemm's 2.3, 2.6 vs 2.6 at two, ~2× slower from 6 rows on, with half fbgemm's error, see
:mod:`.quantize`).

Why our own kernel: at 1–12 rows a Linear is bandwidth-bound, so its floor is one pass over the weight. On
the project's 2-core AMD EPYC (AVX2, MKL torch build), one 9216×3072 fp32 weight, medians of 21 interleaved
calls: ``F.linear`` 10.6 ms at 1 row and 45 ms at 6; ``(W @ x.T).T`` 10.0 / 19.2 ms; oneDNN's prepacked
linear was no better (measured last session); this kernel 7.1 / 9.6 ms — it reads the weight once (16 GB/s
at one row, where MKL's gemv reaches 11) and keeps the rows in registers' reach. No library we can depend on
ships such a kernel for fp32 on CPU (fbgemm's are int8/fp16; torchao's CPU paths are quantized), so this
is the one hand-written kernel in the project: ~200 lines of intrinsics, no torch headers, compiled in
~2 s with the system's C++ compiler (``$CXX``, else ``c++``) into the speechserve cache
(``~/.cache/speechserve/kernels``), keyed by the source's hash.

Where it cannot be built (no compiler, no AVX2/FMA, not x86-64, ``SPEECHSERVE_SMALL_M=0``) :func:`kernel`
returns None, :mod:`speechserve.models.fast_linear` chooses between the two torch forms, and ISQ ``int8``
falls back to ``int8-dynamic``; why is logged once.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels") / "small_m.cpp"
FLAGS = ("-O3", "-fopenmp", "-shared", "-fPIC", "-std=c++17")


def _cache_dir() -> Path:
    return Path(os.environ.get("SPEECHSERVE_CACHE", Path.home() / ".cache" / "speechserve")) / "kernels"


def _cpu_has_avx2_fma() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return "avx2" in flags and "fma" in flags


def _build(source: Path, target: Path) -> None:
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        raise OSError("no C++ compiler (set CXX or install g++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # build aside, then rename: atomic for
        out = Path(tmp) / target.name  # processes that build at the same time
        done = subprocess.run([compiler, *FLAGS, "-o", str(out), str(source)], capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"{compiler} failed: {done.stderr.strip()[-500:]}")
        os.replace(out, target)


@functools.cache
def kernel() -> ctypes.CDLL | None:
    """The loaded kernel library, built on first use; None where it cannot run here (reason logged)."""
    if os.environ.get("SPEECHSERVE_SMALL_M", "1") == "0":
        return None
    if not _cpu_has_avx2_fma():
        log.info("small-row kernel not used: this CPU lacks AVX2/FMA")
        return None
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(FLAGS).encode()).hexdigest()[:16]
    target = _cache_dir() / f"small_m-{digest}.so"
    try:
        if not target.exists():
            _build(SOURCE, target)
        lib = ctypes.CDLL(str(target))
    except OSError as exc:
        log.warning("small-row kernel not used: %s", exc)
        return None
    lib.small_m_linear.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 3 + [ctypes.c_int]
    lib.small_m_linear.restype = None
    lib.small_m_linear_i8.argtypes = (
        [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 3 + [ctypes.c_int] + [ctypes.c_void_p] * 2
    )
    lib.small_m_linear_i8.restype = None
    lib.small_m_i8_max_k.restype = ctypes.c_int64
    return lib


def supports(weight: torch.Tensor) -> bool:
    """Whether :func:`linear` can take this weight (contiguous fp32 on the CPU)."""
    return weight.device.type == "cpu" and weight.dtype == torch.float32 and weight.is_contiguous()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` through the kernel (x: [..., in] fp32; weight as :func:`supports`).

    ctypes drops the GIL for the call, as torch's own ops do, so other Python threads keep running."""
    return _call(x, weight, None, bias, weight.shape[1])


PACK_ROWS, PACK_K = 8, 16
"""The int8 kernel's weight layout (see ``kernels/small_m.cpp``): blocks of 8 rows, 16 inputs of each row in
turn; rows padded to a multiple of 8 and inputs to a multiple of 16 with zeros."""


def pack_int8(values: torch.Tensor) -> torch.Tensor:
    """int8 ``values`` [out, in] in the kernel's layout: [⌈out/8⌉, ⌈in/16⌉, 8, 16]."""
    n, k = values.shape
    n8, k16 = -(-n // PACK_ROWS) * PACK_ROWS, -(-k // PACK_K) * PACK_K
    padded = torch.nn.functional.pad(values.to(torch.int8), (0, k16 - k, 0, n8 - n))
    return padded.view(n8 // PACK_ROWS, PACK_ROWS, k16 // PACK_K, PACK_K).permute(0, 2, 1, 3).contiguous()


def unpack_int8(packed: torch.Tensor, out_features: int, in_features: int) -> torch.Tensor:
    """The inverse of :func:`pack_int8`: int8 [out, in]."""
    blocks, chunks = packed.shape[:2]
    rows = packed.permute(0, 2, 1, 3).reshape(blocks * PACK_ROWS, chunks * PACK_K)
    return rows[:out_features, :in_features].contiguous()


def linear_int8(
    x: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None, in_features: int
) -> torch.Tensor:
    """``F.linear(x, values * scales[:, None], bias)`` without building the float weight: ``packed`` =
    :func:`pack_int8` of the int8 values [out, in], fp32 ``scales`` [out]; x fp32."""
    return _call(x, packed, scales, bias, in_features)


def _call(
    x: torch.Tensor,
    weight: torch.Tensor,
    scales: torch.Tensor | None,
    bias: torch.Tensor | None,
    in_features: int,
) -> torch.Tensor:
    lib = kernel()
    assert lib is not None, "small_m called where kernel() is None"
    flat = x.reshape(-1, x.shape[-1]).float().contiguous()
    out_features = weight.shape[0] if scales is None else scales.shape[0]
    out = torch.empty(flat.shape[0], out_features, dtype=torch.float32)
    if flat.shape[0]:
        sizes = (flat.shape[0], out_features, in_features, torch.get_num_threads())
        if scales is None:
            lib.small_m_linear(flat.data_ptr(), weight.data_ptr(), out.data_ptr(), *sizes)
        else:
            if in_features > lib.small_m_i8_max_k():
                raise ValueError(f"the int8 kernel takes at most {lib.small_m_i8_max_k()} input features")
            k16 = weight.shape[1] * PACK_K  # scratch: x rounded per row (zero-padded), and its steps
            xq = torch.zeros(flat.shape[0] * k16, dtype=torch.int16)
            xs = torch.empty(flat.shape[0], dtype=torch.float32)
            pointers = (flat.data_ptr(), weight.data_ptr(), scales.data_ptr(), out.data_ptr())
            lib.small_m_linear_i8(*pointers, *sizes, xq.data_ptr(), xs.data_ptr())
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], out_features)
