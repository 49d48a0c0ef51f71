"""Load a Mistral-native Voxtral TTS checkpoint into :class:`VoxtralTTS`, verified name by name.

The model is built on the meta device and every tensor is streamed from `consolidated.safetensors`,
converted to the target dtype/device and assigned, so the full weights are held once. Codec weight-norm
pairs are folded, semantic centroids computed, and derived buffers (flow time frequencies, ALiBi slopes,
codebook offsets) recomputed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from speechserve.checkpoints.safetensors_io import describe_mismatch, iter_tensors, list_tensors
from speechserve.errors import CheckpointError
from speechserve.models.voxtral_tts import VoxtralTTS
from speechserve.models.voxtral_tts.config import VoxtralTTSConfig

# checkpoint prefix → module prefix (everything else keeps its name)
NAME_MAP = (
    ("mm_audio_embeddings.tok_embeddings.", "backbone.tok_embeddings."),
    ("mm_audio_embeddings.audio_codebook_embeddings.", "audio_embeddings."),
    ("layers.", "backbone.layers."),
    ("norm.", "backbone.norm."),
)
WEIGHT_NORM_G = ".parametrizations.weight.original0"
WEIGHT_NORM_V = ".parametrizations.weight.original1"
SEMANTIC = "audio_tokenizer.quantizer.semantic_codebook."
ENCODER_PREFIXES = ("audio_tokenizer.input_proj.", "audio_tokenizer.encoder_blocks.")
CLUSTER_USAGE_EPS = 1e-5


def module_name(ckpt_name: str) -> str:
    """Map a checkpoint tensor name to the parameter name in :class:`VoxtralTTS`."""
    for src, dst in NAME_MAP:
        if ckpt_name.startswith(src):
            return dst + ckpt_name[len(src) :]
    for suffix in (WEIGHT_NORM_G, WEIGHT_NORM_V):
        if ckpt_name.endswith(suffix):
            return ckpt_name[: -len(suffix)] + ".weight"
    return ckpt_name


def checkpoint_names(module: str) -> list[str]:
    """The checkpoint tensor name(s) that fill a module parameter (two for a weight-normed codec conv)."""
    for src, dst in NAME_MAP:
        if module.startswith(dst):
            return [src + module[len(dst) :]]
    if module.startswith("audio_tokenizer.") and module.endswith("conv.weight"):
        base = module[: -len(".weight")]
        return [base + WEIGHT_NORM_G, base + WEIGHT_NORM_V]
    return [module]


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """w = g · v / ‖v‖, the norm over every dim but 0 (torch weight_norm, dim=0)."""
    g, v = g.float(), v.float()
    return g * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def has_encoder_weights(names: list[str]) -> bool:
    return any(n.startswith(ENCODER_PREFIXES) for n in names)


def load_voxtral_tts_weights(
    cfg: VoxtralTTSConfig, weights: Path, dtype: torch.dtype, device: torch.device
) -> VoxtralTTS:
    """Build the model and fill it from ``weights``; CheckpointError lists missing/unexpected tensors."""
    names = list_tensors(weights)
    with torch.device("meta"):
        model = VoxtralTTS(cfg, with_encoder=has_encoder_weights(names))
    expected = {name: p.shape for name, p in model.state_dict().items()}
    semantic_keys = {SEMANTIC + "embedding_sum", SEMANTIC + "cluster_usage"}
    wanted = {c for m in expected for c in checkpoint_names(m)} | semantic_keys
    missing, unexpected = wanted - set(names), set(names) - wanted
    if missing or unexpected:
        raise CheckpointError(describe_mismatch(missing, unexpected, str(weights)))

    state: dict[str, torch.Tensor] = {}
    pending_g: dict[str, torch.Tensor] = {}
    semantic: dict[str, torch.Tensor] = {}
    for name, tensor in iter_tensors(weights):
        if name in semantic_keys:
            semantic[name[len(SEMANTIC) :]] = tensor.float()
            continue
        target = module_name(name)
        if name.endswith((WEIGHT_NORM_G, WEIGHT_NORM_V)):
            other = pending_g.pop(target, None)
            if other is None:
                pending_g[target] = tensor
                continue
            g, v = (tensor, other) if name.endswith(WEIGHT_NORM_G) else (other, tensor)
            tensor = fold_weight_norm(g, v)
        if tuple(tensor.shape) != tuple(expected[target]):
            raise CheckpointError(
                f"{weights}: tensor {name} has shape {tuple(tensor.shape)}, the config implies {tuple(expected[target])}"
            )
        state[target] = tensor.to(device=device, dtype=dtype)
    model.load_state_dict(state, strict=True, assign=True)

    usage = semantic["cluster_usage"].clamp(min=CLUSTER_USAGE_EPS)
    centroids = semantic["embedding_sum"] / usage[:, None]
    if centroids.shape != (cfg.codec.semantic_codebook_size, cfg.codec.semantic_dim):
        raise CheckpointError(f"{weights}: semantic codebook has shape {tuple(centroids.shape)}")
    codebook = model.audio_tokenizer.semantic_codebook
    codebook.centroids = centroids.to(device)  # kept in fp32 (spec §9 D14)
    for module in model.modules():
        reset = getattr(module, "reset_derived_buffers", None)
        if reset is not None:
            reset(device)
    return model.eval().requires_grad_(False)
