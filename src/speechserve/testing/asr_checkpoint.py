"""Write random-weight Voxtral ASR (Mini 3B, 2507) checkpoints in the Mistral native or Hugging Face layout.

Native: `params.json` (the schema of the golden/real file), `consolidated.safetensors` (bf16, real names),
`tekken.json`. HF: `config.json`, `preprocessor_config.json`, `generation_config.json`, `model.safetensors`
or `model-0000i-of-0000n.safetensors` shards + `model.safetensors.index.json` (hub names, q/k permuted for
rotate-half RoPE, fp32 `embed_positions`), plus `tekken.json` as the hub repo ships it. Both layouts of one
seed hold the same weights. "tiny" loads in well under a second, "small" is a benchmark size (~0.3 GB); "wide"
has the real widths with 4 encoder and 4 decoder layers (~2.7 GB); "full" the real sizes (~9 GB).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from speechserve.models.voxtral_asr import VoxtralASR
from speechserve.models.voxtral_asr.config import VoxtralASRConfig, parse_params
from speechserve.models.voxtral_asr.encoder import sinusoids
from speechserve.models.voxtral_asr.loader import checkpoint_name, native_to_hf_rope
from speechserve.testing.tekken import write_voxtral_asr_tekken

# spec §1.3 (the real params.json was not readable; the golden case uses these keys)
RELEASE_PARAMS = {
    "dim": 3072, "n_layers": 30, "head_dim": 128, "hidden_dim": 8192, "n_heads": 32, "n_kv_heads": 8,
    "rope_theta": 100000000.0, "norm_eps": 1e-05, "vocab_size": 131072, "max_seq_len": 131072,
    "tied_embeddings": False,
    "multimodal": {
        "whisper_model_args": {
            "encoder_args": {
                "audio_encoding_args": {"sampling_rate": 16000, "num_mel_bins": 128, "hop_length": 160, "window_size": 400},
                "dim": 1280, "n_layers": 32, "head_dim": 64, "hidden_dim": 5120, "n_heads": 20, "vocab_size": 51866,
                "max_source_positions": 1500,
            },
            "downsample_args": {"downsample_factor": 4},
        }
    },
}  # fmt: skip

# decoder (dim, layers, heads, kv heads, head_dim, hidden) / encoder (dim, layers, heads, head_dim, hidden)
PRESETS = {
    "full": None,
    # the real widths with 4 + 4 layers: 2.7 GB
    "wide": {"decoder": (3072, 4, 32, 8, 128, 8192), "encoder": (1280, 4, 20, 64, 5120)},
    "small": {"decoder": (512, 4, 8, 2, 64, 1536), "encoder": (256, 2, 4, 64, 1024)},
    "tiny": {"decoder": (32, 2, 4, 2, 16, 64), "encoder": (32, 1, 2, 16, 128)},
}  # HF needs encoder ffn = 4 x dim


def preset_params(preset: str = "tiny") -> dict:
    """`params.json` contents for a preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    params = copy.deepcopy(RELEASE_PARAMS)
    dims = PRESETS[preset]
    if dims is not None:
        params.update(
            zip(
                ("dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "hidden_dim"),
                dims["decoder"],
                strict=True,
            )
        )
        enc = params["multimodal"]["whisper_model_args"]["encoder_args"]
        enc.update(
            zip(("dim", "n_layers", "n_heads", "head_dim", "hidden_dim"), dims["encoder"], strict=True)
        )
    return params


def hf_config(cfg: VoxtralASRConfig) -> dict:
    """The `config.json` transformers writes for this model (VoxtralForConditionalGeneration)."""
    enc, dec = cfg.encoder, cfg.decoder
    audio = {
        "activation_function": "gelu", "hidden_size": enc.dim, "intermediate_size": enc.hidden_dim,
        "max_source_positions": enc.max_source_positions, "model_type": "voxtral_encoder",
        "num_attention_heads": enc.n_heads, "num_hidden_layers": enc.n_layers, "num_mel_bins": enc.audio.num_mel_bins,
        "scale_embedding": False, "vocab_size": 51866, "dropout": 0.0, "layerdrop": 0.0,
    }  # fmt: skip
    text = {
        "attention_bias": False, "head_dim": dec.head_dim, "hidden_act": "silu", "hidden_size": dec.dim,
        "intermediate_size": dec.hidden_dim, "max_position_embeddings": dec.max_seq_len, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": dec.n_heads, "num_hidden_layers": dec.n_layers,
        "num_key_value_heads": dec.n_kv_heads, "rms_norm_eps": dec.norm_eps,
        "rope_parameters": {"rope_theta": dec.rope_theta, "rope_type": "default"}, "sliding_window": None,
        "tie_word_embeddings": dec.tied_embeddings, "vocab_size": dec.vocab_size,
    }  # fmt: skip
    return {
        "architectures": ["VoxtralForConditionalGeneration"], "audio_config": audio, "audio_token_id": 24,
        "dtype": "bfloat16", "hidden_size": dec.dim, "model_type": "voxtral", "projector_hidden_act": "gelu",
        "text_config": text,
    }  # fmt: skip


HF_PREPROCESSOR = {
    "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128, "hop_length": 160,
    "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
    "return_attention_mask": False, "sampling_rate": 16000,
}  # fmt: skip
HF_GENERATION = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 11}


def _randomize(model: VoxtralASR, gen: torch.Generator) -> None:
    """O(1) activations: matrices ~ N(0, 1/fan_in); norm scales ~ 1 + N(0, 0.2²); biases ~ N(0, 0.2²)."""
    for name, p in model.named_parameters():
        if p.dim() == 1:
            base = 1.0 if name.endswith("norm.weight") else 0.0
            p.data = base + 0.2 * torch.randn(p.shape, generator=gen)
        elif "tok_embeddings" in name:
            p.data = torch.randn(p.shape, generator=gen)
        else:
            p.data = torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5


def _write_hf(root: Path, cfg: VoxtralASRConfig, state: dict[str, torch.Tensor], shards: int) -> None:
    tensors = {}
    for module, w in state.items():
        if module.startswith("decoder.layers.") and module.endswith((".wq.weight", ".wk.weight")):
            heads = cfg.decoder.n_heads if module.endswith(".wq.weight") else cfg.decoder.n_kv_heads
            w = native_to_hf_rope(w, heads)
        tensors[checkpoint_name(module, "hf")] = w.to(torch.bfloat16).contiguous()
    enc = cfg.encoder
    tensors["audio_tower.embed_positions.weight"] = sinusoids(enc.max_source_positions, enc.dim)
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, str(root / "model.safetensors"))
    else:
        weight_map = {}
        for i in range(shards):
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = names[i::shards]
            save_file({n: tensors[n] for n in part}, str(root / file))
            weight_map.update(dict.fromkeys(part, file))
        index = {"metadata": {}, "weight_map": weight_map}
        (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    for name, body in (("config.json", hf_config(cfg)), ("preprocessor_config.json", HF_PREPROCESSOR)):
        (root / name).write_text(json.dumps(body, indent=2), encoding="utf-8")
    (root / "generation_config.json").write_text(json.dumps(HF_GENERATION, indent=2), encoding="utf-8")


def write_random_asr_checkpoint(
    root: str | Path,
    layout: str = "mistral",
    preset: str = "tiny",
    seed: int = 0,
    shards: int = 1,
    tekken: bool = True,
) -> Path:
    """Write a random checkpoint in ``layout`` ("mistral" or "hf", ``shards`` files) to ``root``; return it."""
    params = preset_params(preset)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cfg = parse_params(params)
    gen = torch.Generator().manual_seed(seed)
    model = VoxtralASR(cfg)
    _randomize(model, gen)
    state = model.state_dict()
    if layout == "mistral":
        tensors = {checkpoint_name(m, "mistral"): w.to(torch.bfloat16).contiguous() for m, w in state.items()}
        save_file(tensors, str(root / "consolidated.safetensors"))
        (root / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
    elif layout == "hf":
        _write_hf(root, cfg, state, shards)
    else:
        raise ValueError(f"layout must be 'mistral' or 'hf', not {layout!r}")
    if tekken:
        write_voxtral_asr_tekken(root / "tekken.json")
    return root
