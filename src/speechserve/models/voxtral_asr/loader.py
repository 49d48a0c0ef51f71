"""Load a Voxtral ASR checkpoint (Mistral native or Hugging Face layout) into :class:`VoxtralASR`.

The model is built on the meta device; every tensor is streamed from its safetensors file (all shards of a
sharded HF checkpoint), renamed through one table per layout, converted and assigned, so the weights are held
once. Missing or unexpected tensors fail loudly, listed by their checkpoint names. HF stores decoder q/k rows
in split-half (rotate-half) order; they are permuted back to the native interleaved order the shared RoPE
expects, so both layouts load to identical tensors. HF's stored `embed_positions` table is derived (Whisper
sinusoids) and is recomputed rather than loaded.
"""

from __future__ import annotations

import torch

from speechserve.checkpoints.layout import CheckpointLayout
from speechserve.checkpoints.name_map import (  # noqa: F401  (the rope helpers are re-exported)
    Table,
    hf_to_native_rope,
    load_state,
    native_to_hf_rope,
    rename,
    tensor_files,
)
from speechserve.models.voxtral_asr import VoxtralASR
from speechserve.models.voxtral_asr.config import VoxtralASRConfig

NATIVE_NAMES: Table = (
    ("mm_whisper_embeddings.tok_embeddings.", "decoder.tok_embeddings.", ()),
    ("mm_whisper_embeddings.whisper_encoder.", "whisper_encoder.", ()),
    ("mm_whisper_embeddings.audio_language_projection.", "audio_language_projection.", ()),
    ("layers.", "decoder.layers.", ()),
    ("norm.", "decoder.norm.", ()),
    ("output.", "output.", ()),
)
_HF_ENCODER_LAYER = (
    (".self_attn_layer_norm.", ".attention_norm."),
    (".self_attn.q_proj.", ".attention.wq."),
    (".self_attn.k_proj.", ".attention.wk."),
    (".self_attn.v_proj.", ".attention.wv."),
    (".self_attn.out_proj.", ".attention.wo."),
    (".final_layer_norm.", ".ffn_norm."),
    (".fc1.", ".feed_forward.w1."),
    (".fc2.", ".feed_forward.w2."),
)
_HF_DECODER_LAYER = (
    (".input_layernorm.", ".attention_norm."),
    (".post_attention_layernorm.", ".ffn_norm."),
    (".self_attn.q_proj.", ".attention.wq."),
    (".self_attn.k_proj.", ".attention.wk."),
    (".self_attn.v_proj.", ".attention.wv."),
    (".self_attn.o_proj.", ".attention.wo."),
    (".mlp.gate_proj.", ".feed_forward.w1."),
    (".mlp.down_proj.", ".feed_forward.w2."),
    (".mlp.up_proj.", ".feed_forward.w3."),
)
HF_NAMES: Table = (
    ("language_model.model.embed_tokens.", "decoder.tok_embeddings.", ()),
    ("language_model.model.layers.", "decoder.layers.", _HF_DECODER_LAYER),
    ("language_model.model.norm.", "decoder.norm.", ()),
    ("language_model.lm_head.", "output.", ()),
    ("audio_tower.conv1.", "whisper_encoder.conv_layers.0.", ()),
    ("audio_tower.conv2.", "whisper_encoder.conv_layers.1.", ()),
    ("audio_tower.layers.", "whisper_encoder.transformer.layers.", _HF_ENCODER_LAYER),
    ("audio_tower.layer_norm.", "whisper_encoder.transformer.norm.", ()),
    ("multi_modal_projector.linear_1.", "audio_language_projection.0.", ()),
    ("multi_modal_projector.linear_2.", "audio_language_projection.2.", ()),
)
HF_DERIVED = {"audio_tower.embed_positions.weight"}  # Whisper sinusoids, recomputed
HF_TIED_HEAD = "language_model.lm_head.weight"  # may be written even when tied; then ignored


def module_name(ckpt_name: str, fmt: str) -> str | None:
    """The :class:`VoxtralASR` parameter a checkpoint tensor fills (None: no such parameter)."""
    return rename(ckpt_name, NATIVE_NAMES if fmt == "mistral" else HF_NAMES, to_module=True)


def checkpoint_name(module: str, fmt: str) -> str:
    """The checkpoint tensor name (layout ``fmt``) that fills a :class:`VoxtralASR` parameter."""
    name = rename(module, NATIVE_NAMES if fmt == "mistral" else HF_NAMES, to_module=False)
    if name is None:
        raise KeyError(module)
    return name


def _rope_heads(module: str, cfg: VoxtralASRConfig) -> int | None:
    if module.startswith("decoder.layers.") and module.endswith(".attention.wq.weight"):
        return cfg.decoder.n_heads
    if module.startswith("decoder.layers.") and module.endswith(".attention.wk.weight"):
        return cfg.decoder.n_kv_heads
    return None


def load_voxtral_asr_weights(
    cfg: VoxtralASRConfig, layout: CheckpointLayout, dtype: torch.dtype, device: torch.device
) -> VoxtralASR:
    """Build the model and fill it from the checkpoint; CheckpointError lists missing/unexpected tensors."""
    fmt = layout.format
    with torch.device("meta"):
        model = VoxtralASR(cfg)
    expected = {name: p.shape for name, p in model.state_dict().items()}
    skip = (HF_DERIVED | ({HF_TIED_HEAD} if cfg.decoder.tied_embeddings else set())) if fmt == "hf" else set()
    state = load_state(
        layout,
        expected,
        lambda name: module_name(name, fmt),
        lambda module: checkpoint_name(module, fmt),
        skip,
        lambda module: _rope_heads(module, cfg),
        dtype,
        device,
    )
    model.load_state_dict(state, strict=True, assign=True)
    model.whisper_encoder.reset_derived_buffers(device)
    return model.eval().requires_grad_(False)
