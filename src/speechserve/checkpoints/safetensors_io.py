"""Lazy, verified reading of safetensors files: one tensor in memory at a time (the file is mmapped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from speechserve.errors import CheckpointError


def list_tensors(path: str | Path) -> list[str]:
    """Names of the tensors in a safetensors file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    except (
        OSError,
        ValueError,
        RuntimeError,
        SafetensorError,
    ) as exc:  # 0.8's SafetensorError is none of the others
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def iter_tensors(path: str | Path, names: list[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` pairs lazily, in file order (or the order of ``names``)."""
    with safe_open(str(path), framework="pt") as f:
        for name in names if names is not None else list(f.keys()):
            yield name, f.get_tensor(name)


def describe_mismatch(missing: set[str], unexpected: set[str], where: str, limit: int = 20) -> str:
    """One message listing missing and unexpected tensor names (the first ``limit`` of each)."""

    def fmt(names: set[str]) -> str:
        shown = sorted(names)[:limit]
        more = f" … and {len(names) - limit} more" if len(names) > limit else ""
        return ", ".join(shown) + more

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing tensor(s): {fmt(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensor(s): {fmt(unexpected)}")
    return f"{where} does not match the model: " + "; ".join(parts)
