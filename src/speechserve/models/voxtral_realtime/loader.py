"""Load a Voxtral Realtime checkpoint (Mistral native or Hugging Face layout) into :class:`VoxtralRealtime`.

The model is built on the meta device; every tensor is streamed from its safetensors file(s), renamed through
one table per layout and assigned, so the weights are held once. Missing or unexpected tensors fail loudly,
listed by their checkpoint names. HF stores the q/k rows (and the encoder's q bias) in split-half order;
they are permuted back to the native interleaved order the shared RoPE expects, so both layouts load to
identical tensors. HF's tied `language_model.lm_head.weight`, when written, is the token table and ignored.
"""

from __future__ import annotations

import torch

from speechserve.checkpoints.layout import CheckpointLayout
from speechserve.checkpoints.name_map import Table, load_state, rename
from speechserve.models.voxtral_realtime.config import VoxtralRealtimeConfig
from speechserve.models.voxtral_realtime.model import VoxtralRealtime

_NATIVE_PREFIX = "mm_streams_embeddings.embedding_module."
NATIVE_NAMES: Table = (
    (_NATIVE_PREFIX + "tok_embeddings.", "decoder.tok_embeddings.", ()),
    (_NATIVE_PREFIX + "whisper_encoder.", "whisper_encoder.", ()),
    (_NATIVE_PREFIX + "audio_language_projection.", "audio_language_projection.", ()),
    ("layers.", "decoder.layers.", ()),
    ("norm.", "decoder.norm.", ()),
)
_HF_ATTENTION = (
    (".self_attn.q_proj.", ".attention.wq."),
    (".self_attn.k_proj.", ".attention.wk."),
    (".self_attn.v_proj.", ".attention.wv."),
    (".self_attn.o_proj.", ".attention.wo."),
    (".mlp.gate_proj.", ".feed_forward.w1."),
    (".mlp.down_proj.", ".feed_forward.w2."),
    (".mlp.up_proj.", ".feed_forward.w3."),
)
_HF_ENCODER_LAYER = (
    (".self_attn_layer_norm.", ".attention_norm."),
    (".final_layer_norm.", ".ffn_norm."),
    *_HF_ATTENTION,
)
_HF_DECODER_LAYER = (
    (".input_layernorm.", ".attention_norm."),
    (".post_attention_layernorm.", ".ffn_norm."),
    (".ada_rms_norm.linear1.", ".ada_rms_norm_t_cond.0."),
    (".ada_rms_norm.linear2.", ".ada_rms_norm_t_cond.2."),
    *_HF_ATTENTION,
)
HF_NAMES: Table = (
    ("language_model.model.embed_tokens.", "decoder.tok_embeddings.", ()),
    ("language_model.model.layers.", "decoder.layers.", _HF_DECODER_LAYER),
    ("language_model.model.norm.", "decoder.norm.", ()),
    ("audio_tower.embedder.conv1.", "whisper_encoder.conv_layers.0.conv.", ()),
    ("audio_tower.embedder.conv2.", "whisper_encoder.conv_layers.1.conv.", ()),
    ("audio_tower.layers.", "whisper_encoder.transformer.layers.", _HF_ENCODER_LAYER),
    ("audio_tower.norm.", "whisper_encoder.transformer.norm.", ()),
    ("multi_modal_projector.linear_1.", "audio_language_projection.0.", ()),
    ("multi_modal_projector.linear_2.", "audio_language_projection.2.", ()),
)
HF_TIED_HEAD = "language_model.lm_head.weight"


def module_name(ckpt_name: str, fmt: str) -> str | None:
    """The :class:`VoxtralRealtime` parameter a checkpoint tensor fills (None: no such parameter)."""
    return rename(ckpt_name, NATIVE_NAMES if fmt == "mistral" else HF_NAMES, to_module=True)


def checkpoint_name(module: str, fmt: str) -> str:
    """The checkpoint tensor name (layout ``fmt``) that fills a :class:`VoxtralRealtime` parameter."""
    name = rename(module, NATIVE_NAMES if fmt == "mistral" else HF_NAMES, to_module=False)
    if name is None:
        raise KeyError(module)
    return name


def rope_heads(module: str, cfg: VoxtralRealtimeConfig) -> int | None:
    """Heads of a q/k tensor whose rows RoPE rotates in pairs (HF permutes them), else None."""
    if module.startswith("decoder.layers."):
        if module.endswith(".attention.wq.weight"):
            return cfg.decoder.n_heads
        if module.endswith(".attention.wk.weight"):
            return cfg.decoder.n_kv_heads
    if module.startswith("whisper_encoder.") and module.endswith((".wq.weight", ".wq.bias", ".wk.weight")):
        return cfg.encoder.n_heads
    return None


def load_voxtral_realtime_weights(
    cfg: VoxtralRealtimeConfig, layout: CheckpointLayout, dtype: torch.dtype, device: torch.device
) -> VoxtralRealtime:
    """Build the model and fill it from the checkpoint; CheckpointError lists missing/unexpected tensors."""
    fmt = layout.format
    with torch.device("meta"):
        model = VoxtralRealtime(cfg)
    expected = {name: p.shape for name, p in model.state_dict().items()}
    state = load_state(
        layout,
        expected,
        lambda name: module_name(name, fmt),
        lambda module: checkpoint_name(module, fmt),
        {HF_TIED_HEAD} if fmt == "hf" else set(),
        lambda module: rope_heads(module, cfg),
        dtype,
        device,
    )
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False)
