"""`speechserve.load`: model reference → a ready pipeline, whatever the reference is."""

from __future__ import annotations

from pathlib import Path

import torch

from speechserve.asr.pipeline import VoxtralASRPipeline
from speechserve.checkpoints.layout import CheckpointLayout, detect_layout
from speechserve.checkpoints.resolve import resolve_model_dir
from speechserve.checkpoints.voices import load_voices
from speechserve.checkpoints.voxtral_asr_config import load_config as load_asr_config
from speechserve.checkpoints.voxtral_asr_loader import load_voxtral_asr_weights
from speechserve.checkpoints.voxtral_tts_config import load_params
from speechserve.checkpoints.voxtral_tts_loader import load_voxtral_tts_weights
from speechserve.errors import CheckpointError, UnsupportedFeature
from speechserve.tokenization.voxtral_asr import VoxtralASRTokenizer
from speechserve.tokenization.voxtral_tts import VoxtralTTSTokenizer
from speechserve.tts.voxtral import VoxtralTTSPipeline

# (architecture, layout format) of the Voxtral Mini 3B / Small 24B (2507) checkpoints
ASR_LAYOUTS = {("voxtral_asr", "mistral"), ("voxtral", "hf")}

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_DTYPES |= {"float16": torch.float16, "fp16": torch.float16}


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None`` → CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None`` → bf16 on CUDA (the release's dtype), fp32 on CPU (exact, and fast there)."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


def load(
    model: str | Path,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    tokenizer: str | Path | None = None,
    revision: str | None = None,
) -> VoxtralTTSPipeline | VoxtralASRPipeline:
    """Load a speech model from a local directory, the Hugging Face cache, or a hub id (downloaded).

    Returns the pipeline of the detected architecture: :class:`VoxtralTTSPipeline` for Voxtral TTS,
    :class:`VoxtralASRPipeline` for Voxtral Mini 3B / Small 24B (Mistral or Hugging Face layout).
    ``tokenizer`` overrides the checkpoint's own `tekken.json`.
    """
    root = resolve_model_dir(model, revision=revision)
    layout = detect_layout(root)
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    tok_path = Path(tokenizer) if tokenizer is not None else root / "tekken.json"
    if layout.architecture == "voxtral_tts" and layout.format == "mistral":
        return _load_tts(root, layout, tok_path, dev, dt, str(model))
    if (layout.architecture, layout.format) in ASR_LAYOUTS:
        return _load_asr(layout, tok_path, dev, dt, str(model))
    raise UnsupportedFeature(f"{root}: {layout.architecture} ({layout.format} layout) is not supported yet")


def _check_tokenizer(tok_path: Path) -> None:
    if not tok_path.is_file():
        raise CheckpointError(f"no tokenizer: {tok_path} does not exist (pass tokenizer=PATH)")


def _load_tts(
    root: Path, layout: CheckpointLayout, tok_path: Path, dev: torch.device, dt: torch.dtype, name: str
) -> VoxtralTTSPipeline:
    cfg = load_params(root)
    _check_tokenizer(tok_path)
    tok = VoxtralTTSTokenizer(tok_path)
    net = load_voxtral_tts_weights(cfg, layout.weights[0], dt, dev)
    voices = load_voices(root, list(cfg.voices), cfg.backbone.dim, tok.voice_num_audio_tokens, dt, dev)
    return VoxtralTTSPipeline(net, tok, voices, name=name)


def _load_asr(
    layout: CheckpointLayout, tok_path: Path, dev: torch.device, dt: torch.dtype, name: str
) -> VoxtralASRPipeline:
    cfg = load_asr_config(layout.root, layout.format)
    _check_tokenizer(tok_path)
    tok = VoxtralASRTokenizer(tok_path)
    net = load_voxtral_asr_weights(cfg, layout, dt, dev)
    return VoxtralASRPipeline(net, tok, name=name)
