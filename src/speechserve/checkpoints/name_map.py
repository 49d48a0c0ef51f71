"""Checkpoint-name tables and the helpers every loader of a Mistral/Hugging Face layout shares: renaming
tensors between a checkpoint's names and a module's, RoPE row orders, and the shard map of a layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from speechserve.checkpoints.layout import CheckpointLayout
from speechserve.checkpoints.safetensors_io import describe_mismatch, iter_tensors, list_tensors
from speechserve.errors import CheckpointError

Infixes = tuple[tuple[str, str], ...]
Table = tuple[tuple[str, str, Infixes], ...]
"""(checkpoint prefix, module prefix, infixes renamed after the prefix)."""

HF_INDEX = "model.safetensors.index.json"


def rename(name: str, table: Table, to_module: bool) -> str | None:
    """``name`` translated through ``table`` (checkpoint → module when ``to_module``); None if unmapped."""
    for ckpt_prefix, module_prefix, infixes in table:
        src, dst = (ckpt_prefix, module_prefix) if to_module else (module_prefix, ckpt_prefix)
        if name.startswith(src):
            rest = name[len(src) :]
            for ckpt_infix, module_infix in infixes:
                a, b = (ckpt_infix, module_infix) if to_module else (module_infix, ckpt_infix)
                if a in rest:
                    rest = rest.replace(a, b, 1)
                    break
            return dst + rest
    return None


def hf_to_native_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Split-half (HF) q/k rows → interleaved (native) rows, per head: HF row t ↔ native row 2t."""
    head_dim = w.shape[0] // n_heads
    return w.reshape(n_heads, 2, head_dim // 2, -1).transpose(1, 2).reshape(w.shape)


def native_to_hf_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Inverse of :func:`hf_to_native_rope` (transformers' `permute_for_rope`)."""
    head_dim = w.shape[0] // n_heads
    return w.reshape(n_heads, head_dim // 2, 2, -1).transpose(1, 2).reshape(w.shape)


def tensor_files(layout: CheckpointLayout) -> dict[str, Path]:
    """Checkpoint tensor name → the file holding it, across all shards (checked against the HF index)."""
    where: dict[str, Path] = {}
    for path in layout.weights:
        for name in list_tensors(path):
            if name in where:
                raise CheckpointError(f"tensor {name} is in both {where[name].name} and {path.name}")
            where[name] = path
    index = layout.root / HF_INDEX
    if layout.format == "hf" and index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        absent = sorted({f for f in weight_map.values() if not (layout.root / f).is_file()})
        if absent:
            raise CheckpointError(f"{index} lists shard(s) that do not exist: {absent}")
        wrong = sorted(n for n, f in weight_map.items() if n not in where or where[n].name != f)
        if wrong:
            raise CheckpointError(f"{index} does not match the shards for tensor(s): {wrong[:20]}")
    return where


def load_state(
    layout: CheckpointLayout,
    expected: dict[str, torch.Size],
    to_module: Callable[[str], str | None],
    to_checkpoint: Callable[[str], str],
    skip: set[str],
    rope_heads: Callable[[str], int | None],
    dtype: torch.dtype,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """The module state of a checkpoint, verified name by name: every tensor of ``layout`` (less ``skip``) must
    fill one of ``expected``'s parameters with its shape, and every parameter must be filled (CheckpointError
    lists what is missing or unexpected). HF q/k rows (``rope_heads`` not None) are put back in native order."""
    files = tensor_files(layout)
    targets: dict[str, str] = {}  # checkpoint name → module name
    unexpected = set()
    for name in files:
        target = None if name in skip else to_module(name)
        if target in expected:
            targets[name] = target
        elif name not in skip:
            unexpected.add(name)
    missing = {to_checkpoint(m) for m in set(expected) - set(targets.values())}
    if missing or unexpected:
        raise CheckpointError(describe_mismatch(missing, unexpected, str(layout.root)))
    state: dict[str, torch.Tensor] = {}
    for path in layout.weights:
        for name, tensor in iter_tensors(path, [n for n in targets if files[n] == path]):
            target = targets[name]
            if tuple(tensor.shape) != tuple(expected[target]):
                raise CheckpointError(
                    f"{path}: tensor {name} has shape {tuple(tensor.shape)}, the config implies {tuple(expected[target])}"
                )
            heads = rope_heads(target) if layout.format == "hf" else None
            if heads is not None:
                tensor = hf_to_native_rope(tensor, heads)
            state[target] = tensor.to(device=device, dtype=dtype)
    return state
