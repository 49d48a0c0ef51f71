"""Detect what a checkpoint directory holds from its files, never from its path or name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from speechserve.errors import CheckpointError

MISTRAL_WEIGHTS = "consolidated.safetensors"


@dataclass(frozen=True)
class CheckpointLayout:
    """Where a checkpoint's pieces are. ``architecture`` comes from the params/config contents."""

    root: Path
    format: (
        str  # "mistral" (params.json + consolidated.safetensors) or "hf" (config.json + model*.safetensors)
    )
    architecture: str
    """The registered family that claims the config (for HF configs nobody claims: its ``model_type``)."""
    params_path: Path
    weights: tuple[Path, ...]
    config: dict = field(default_factory=dict, compare=False, repr=False)
    """The parsed params.json / config.json."""


def _architecture(root: Path, fmt: str, config: dict) -> str:
    """The registered family that claims this config (the families know their own configs)."""
    from speechserve import registry  # the registry sits above checkpoints/; asked lazily

    family = registry.identify(fmt, config)
    if family is not None:
        return family.name
    if fmt == "hf":
        return str(config.get("model_type", "unknown"))  # loading says it is not supported
    known = ", ".join(f.name for f in registry.families())
    raise CheckpointError(f"{root / 'params.json'} describes no model family speechserve knows ({known})")


def detect_layout(root: str | Path) -> CheckpointLayout:
    """Inspect ``root`` and say which layout and architecture it holds; CheckpointError if neither."""
    root = Path(root)
    params, weights = root / "params.json", root / MISTRAL_WEIGHTS
    if params.is_file():
        if not weights.is_file():
            raise CheckpointError(f"{root} has params.json but no {MISTRAL_WEIGHTS}")
        with params.open(encoding="utf-8") as f:
            cfg = json.load(f)
        return CheckpointLayout(root, "mistral", _architecture(root, "mistral", cfg), params, (weights,), cfg)
    config = root / "config.json"
    if config.is_file():
        with config.open(encoding="utf-8") as f:
            cfg = json.load(f)
        shards = tuple(sorted(root.glob("model*.safetensors")))
        if not shards:
            raise CheckpointError(f"{root} has config.json but no model*.safetensors")
        return CheckpointLayout(root, "hf", _architecture(root, "hf", cfg), config, shards, cfg)
    found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    raise CheckpointError(
        f"{root} is not a checkpoint: expected params.json + {MISTRAL_WEIGHTS} (Mistral layout) or config.json + "
        f"model*.safetensors (Hugging Face layout); found {found[:20]}"
    )
