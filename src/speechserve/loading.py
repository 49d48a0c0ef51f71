"""`speechserve.load`: model reference → a ready pipeline, whatever the reference and whatever the family.

The reference is resolved (local directory, Hugging Face cache, hub download), its files say which layout
and which family it is (:mod:`speechserve.registry`), and that family's loader builds the pipeline. Nothing
here knows a family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from speechserve import registry
from speechserve.checkpoints.layout import detect_layout
from speechserve.checkpoints.resolve import resolve_model_dir
from speechserve.errors import UnsupportedFeature

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


def model_id(model: str | Path) -> str:
    """The name a model is known by: a hub id as given, a local directory by its own name (never the
    machine's path)."""
    text = str(model)
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")) or text.count("/") != 1:
        return path.resolve().name or text
    return text


def load(
    model: str | Path,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    tokenizer: str | Path | None = None,
    revision: str | None = None,
    fast_matmul: bool = True,
    isq: str | None = None,
    codec: str | Path | None = None,
) -> Any:
    """Load a speech model from a local directory, the Hugging Face cache, or a hub id (downloaded).

    Returns the pipeline of the detected family (``speechserve.registry.families()`` lists them), e.g. a
    Voxtral TTS pipeline (``synthesize``/``generate``) or a Voxtral ASR pipeline (``transcribe``/``chat``).
    ``tokenizer`` overrides the checkpoint's own tokenizer file. ``pipeline.family.capabilities`` says what
    it can do. ``fast_matmul`` (CPU only): pick the faster small-batch product per weight shape by
    measurement (:mod:`speechserve.models.fast_linear`). ``isq`` ("int8", "int8-dynamic", "int4", "fp8") quantizes the
    weights at load (:mod:`speechserve.models.quantize`; what each mode does on each device is documented
    there); the family keeps its sensitive parts (``Family.isq_keep``) in full precision. ``codec`` (a local
    path or hub id) names the separate audio codec of families that load one (Dia's DAC, when the checkpoint
    has no ``dac/`` folder); other families ignore it.
    """
    root = resolve_model_dir(model, revision=revision)
    layout = detect_layout(root)
    family = registry.identify(layout.format, layout.config)
    if family is None:
        raise UnsupportedFeature(
            f"{root}: {layout.architecture} ({layout.format} layout) is not supported yet"
        )
    dev = pick_device(device)
    ctx = registry.LoadContext(
        layout,
        dev,
        pick_dtype(dtype, dev),
        Path(tokenizer) if tokenizer is not None else None,
        model_id(model),
        str(codec) if codec is not None else None,
    )
    pipeline = family.load(ctx)
    pipeline.family = family
    model = getattr(pipeline, "model", None)
    saved = _saved_isq(root, model, dev, isq)  # a pre-quantized checkpoint: rebuilt, not quantized again
    if saved is not None:
        pipeline.isq = saved
    elif isq is not None:
        from speechserve.models.quantize import quantize

        if not isinstance(model, torch.nn.Module):
            raise UnsupportedFeature(f"the {family.name} family does not support isq")
        quantize(model, isq, family.isq_keep, family.isq_dynamic)
        pipeline.isq = isq
    if fast_matmul and dev.type == "cpu" and isinstance(getattr(pipeline, "model", None), torch.nn.Module):
        from speechserve.models import fast_linear

        fast_linear.install(pipeline.model)
    return pipeline


def _saved_isq(root: Path, model: Any, device: torch.device, isq: str | None) -> str | None:
    """The mode of a pre-quantized checkpoint (:mod:`speechserve.checkpoints.quantized`), its Linears rebuilt;
    None for a float checkpoint."""
    from speechserve.checkpoints import quantized

    marker = quantized.read_marker(root)
    if marker is None:
        return None
    if isq is not None and isq != marker["mode"]:
        raise UnsupportedFeature(
            f"{root} is saved quantized ({marker['mode']}); it cannot be loaded with isq={isq}"
        )
    return quantized.restore(model, root, device)
