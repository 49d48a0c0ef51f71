"""Voice presets: `voice_embedding/<name>.pt` (torch.save of a bf16 [N, dim] tensor) or `.safetensors`."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from speechserve.errors import CheckpointError

VOICE_DIR = "voice_embedding"


def read_voice(path: Path) -> torch.Tensor:
    """Load one preset tensor [N, dim] from a `.pt` or `.safetensors` file."""
    if path.suffix == ".safetensors":
        tensors = load_file(str(path))
        tensor = tensors.get("embedding") if "embedding" in tensors else None
        if tensor is None and len(tensors) == 1:
            tensor = next(iter(tensors.values()))
        if tensor is None:
            raise CheckpointError(
                f"{path} must hold one tensor (or one named 'embedding'); found {sorted(tensors)}"
            )
    else:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(tensor, dict) and len(tensor) == 1:
            tensor = next(iter(tensor.values()))
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2:
        raise CheckpointError(f"{path} must hold a 2-D tensor [N_voice, dim]")
    return tensor


def load_voices(
    root: Path,
    names: list[str],
    dim: int,
    expected_rows: dict[str, int] | None,
    dtype: torch.dtype,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Load every named preset; CheckpointError lists absent files and shape mismatches."""
    voices, problems = {}, []
    for name in names:
        candidates = [root / VOICE_DIR / f"{name}{ext}" for ext in (".pt", ".safetensors")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            problems.append(f"{name}: no {VOICE_DIR}/{name}.pt or .safetensors")
            continue
        rows = read_voice(path)
        want = (expected_rows or {}).get(name, rows.shape[0])
        if rows.shape != (want, dim):
            problems.append(f"{name}: shape {tuple(rows.shape)}, expected ({want}, {dim})")
            continue
        voices[name] = rows.to(device=device, dtype=dtype)
    if problems:
        raise CheckpointError("voice presets do not match the checkpoint: " + "; ".join(problems))
    return voices
