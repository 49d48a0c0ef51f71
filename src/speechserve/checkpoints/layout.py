"""Detect what a checkpoint directory holds from its files, never from its path or name."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    params_path: Path
    weights: tuple[Path, ...]


def _architecture_from_params(params: dict) -> str:
    mm = params.get("multimodal", {})
    if params.get("model_type") == "voxtral_tts" or "audio_tokenizer_args" in mm:
        return "voxtral_tts"
    if "whisper_model_args" in mm:
        encoder = mm["whisper_model_args"].get("encoder_args", {})
        return "voxtral_realtime" if encoder.get("causal", False) else "voxtral_asr"
    raise CheckpointError(
        "params.json describes no speech architecture speechserve knows (expected Voxtral TTS/ASR)"
    )


def detect_layout(root: str | Path) -> CheckpointLayout:
    """Inspect ``root`` and say which layout and architecture it holds; CheckpointError if neither."""
    root = Path(root)
    params, weights = root / "params.json", root / MISTRAL_WEIGHTS
    if params.is_file():
        if not weights.is_file():
            raise CheckpointError(f"{root} has params.json but no {MISTRAL_WEIGHTS}")
        with params.open(encoding="utf-8") as f:
            arch = _architecture_from_params(json.load(f))
        return CheckpointLayout(root, "mistral", arch, params, (weights,))
    config = root / "config.json"
    if config.is_file():
        with config.open(encoding="utf-8") as f:
            model_type = json.load(f).get("model_type", "unknown")
        shards = tuple(sorted(root.glob("model*.safetensors")))
        if not shards:
            raise CheckpointError(f"{root} has config.json but no model*.safetensors")
        return CheckpointLayout(root, "hf", model_type, config, shards)
    found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    raise CheckpointError(
        f"{root} is not a checkpoint: expected params.json + {MISTRAL_WEIGHTS} (Mistral layout) or config.json + "
        f"model*.safetensors (Hugging Face layout); found {found[:20]}"
    )
