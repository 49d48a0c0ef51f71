"""Write random-weight Voxtral Mini 4B Realtime (2602) checkpoints in the Mistral native or Hugging Face layout.

Native: `params.json` (the release's keys, in its order), `consolidated.safetensors` (bf16, real names, tied
embeddings: no `output.weight`), `tekken.json` (streaming audio section). HF: `config.json`,
`preprocessor_config.json`, `generation_config.json`, `model.safetensors` (hub names, q/k rows and the
encoder's q bias permuted for rotate-half RoPE), plus `tekken.json`. Both layouts of one seed hold the same
weights. "tiny" has the golden case's widths (windows 96 / 48, so both slide within seconds); "wide" the
release's widths and windows with 4 encoder and 4 decoder layers (~2 GB); "full" the release's sizes (~9 GB).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from speechserve.checkpoints.name_map import native_to_hf_rope
from speechserve.models.voxtral_realtime.config import VoxtralRealtimeConfig, parse_params
from speechserve.models.voxtral_realtime.loader import checkpoint_name, rope_heads
from speechserve.models.voxtral_realtime.model import VoxtralRealtime
from speechserve.testing.tekken import voxtral_asr_tekken

# spec §1.2 (verbatim values of the release's params.json)
RELEASE_PARAMS = {
    "dim": 3072, "n_layers": 26, "head_dim": 128, "hidden_dim": 9216, "n_heads": 32, "n_kv_heads": 8,
    "use_biases": False, "causal": True, "rope_theta": 1000000.0, "norm_eps": 1e-05, "vocab_size": 131072,
    "model_parallel": 1, "tied_embeddings": True, "sliding_window": 8192, "model_max_length": 131072,
    "multimodal": {
        "whisper_model_args": {
            "encoder_args": {
                "audio_encoding_args": {
                    "sampling_rate": 16000, "frame_rate": 12.5, "num_mel_bins": 128, "hop_length": 160,
                    "window_size": 400, "chunk_length_s": None, "global_log_mel_max": 1.5,
                    "transcription_format": "streaming",
                },
                "dim": 1280, "n_layers": 32, "head_dim": 64, "hidden_dim": 5120, "n_heads": 32, "vocab_size": 131072,
                "n_kv_heads": 32, "use_biases": True, "use_cache": False, "rope_theta": 1000000.0, "causal": True,
                "norm_eps": 1e-05, "pos_embed": "rope", "max_source_positions": None, "ffn_type": "swiglu",
                "norm_type": "rms_norm", "sliding_window": 750,
            },
            "downsample_args": {"downsample_factor": 4},
        }
    },
    "ada_rms_norm_t_cond": True, "ada_rms_norm_t_cond_dim": 32,
}  # fmt: skip

# decoder (dim, layers, heads, kv heads, head_dim, hidden, window) / encoder (dim, layers, heads, head_dim, hidden, window)
PRESETS = {
    "full": None,
    "wide": {"decoder": (3072, 4, 32, 8, 128, 9216, 8192), "encoder": (1280, 4, 32, 64, 5120, 750)},  # ~2 GB
    "tiny": {"decoder": (16, 2, 4, 2, 16, 48, 48), "encoder": (64, 2, 4, 32, 160, 96)},
}

STREAMING_AUDIO_SECTION = {
    "sampling_rate": 16000,
    "frame_rate": 12.5,
    "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
    "chunk_length_s": None,
    "transcription_format": "streaming",
    "transcription_delay_ms": 480,
    "streaming_look_ahead_ms": 2.5,
    "streaming_look_back_ms": 52.5,
    "streaming_n_left_pad_tokens": 32,
}
"""The release's tekken.json `audio` section (spec §1.2)."""
_REALTIME_SPECIALS = {32: "[STREAMING_PAD]", 33: "[STREAMING_WORD]", 34: "<SPECIAL_34>"}
"""Where the realtime tokenizer's special tokens differ from the 3B's ([ARGS], [CALL_ID], [TRANSCRIBE])."""


def voxtral_realtime_tekken(delay_ms: int = 480) -> dict:
    """The tekken v7 tokenizer of the realtime golden case: the ASR case's BPE ranks, the realtime special
    tokens and the streaming audio section (default delay ``delay_ms``)."""
    tekken = voxtral_asr_tekken()
    tekken["config"]["version"] = "v7"
    for special in tekken["special_tokens"]:
        special["token_str"] = _REALTIME_SPECIALS.get(special["rank"], special["token_str"])
    tekken["audio"] = dict(STREAMING_AUDIO_SECTION, transcription_delay_ms=delay_ms)
    return tekken


def write_voxtral_realtime_tekken(path: str | Path, delay_ms: int = 480) -> Path:
    """Write :func:`voxtral_realtime_tekken` to ``path`` (byte-identical to the golden case's file at 480 ms)."""
    path = Path(path)
    text = json.dumps(voxtral_realtime_tekken(delay_ms), ensure_ascii=False, separators=(",", ":"))
    path.write_bytes(text.encode("utf-8"))
    return path


def preset_params(preset: str = "tiny") -> dict:
    """`params.json` contents for a preset."""
    params = copy.deepcopy(RELEASE_PARAMS)
    dims = PRESETS[preset]
    if dims is not None:
        keys = ("dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "hidden_dim", "sliding_window")
        params.update(zip(keys, dims["decoder"], strict=True))
        enc = params["multimodal"]["whisper_model_args"]["encoder_args"]
        keys = ("dim", "n_layers", "n_heads", "head_dim", "hidden_dim", "sliding_window")
        enc.update(zip(keys, dims["encoder"], strict=True))
        enc["n_kv_heads"] = enc["n_heads"]
    return params


def hf_config(cfg: VoxtralRealtimeConfig) -> dict:
    """The `config.json` transformers writes for this model (VoxtralRealtimeForConditionalGeneration)."""
    enc, dec = cfg.encoder, cfg.decoder
    audio = {
        "activation_function": "gelu", "head_dim": enc.head_dim, "hidden_act": "silu", "hidden_size": enc.dim,
        "intermediate_size": enc.hidden_dim, "max_position_embeddings": 1500, "model_type": "voxtral_realtime_encoder",
        "num_attention_heads": enc.n_heads, "num_hidden_layers": enc.n_layers, "num_key_value_heads": enc.n_heads,
        "num_mel_bins": enc.audio.num_mel_bins, "rms_norm_eps": enc.norm_eps,
        "rope_parameters": {"rope_theta": enc.rope_theta, "rope_type": "default"},
        "sliding_window": enc.sliding_window, "vocab_size": dec.vocab_size,
    }  # fmt: skip
    text = {
        "bos_token_id": 1, "eos_token_id": 2, "head_dim": dec.head_dim, "hidden_act": "silu", "hidden_size": dec.dim,
        "intermediate_size": dec.hidden_dim, "max_position_embeddings": dec.max_seq_len,
        "model_type": "voxtral_realtime_text", "num_attention_heads": dec.n_heads,
        "num_hidden_layers": dec.n_layers, "num_key_value_heads": dec.n_kv_heads, "rms_norm_eps": dec.norm_eps,
        "rope_parameters": {"rope_theta": dec.rope_theta, "rope_type": "default"},
        "sliding_window": cfg.sliding_window, "tie_word_embeddings": True, "vocab_size": dec.vocab_size,
    }  # fmt: skip
    return {
        "architectures": ["VoxtralRealtimeForConditionalGeneration"], "audio_config": audio,
        "audio_length_per_tok": cfg.mel_frames_per_token, "default_num_delay_tokens": 6,
        "downsample_factor": cfg.downsample_factor, "dtype": "bfloat16", "hidden_size": dec.dim,
        "model_type": "voxtral_realtime", "projector_hidden_act": "gelu", "text_config": text,
        "tie_word_embeddings": True,
    }  # fmt: skip


def hf_preprocessor(cfg: VoxtralRealtimeConfig) -> dict:
    a = cfg.encoder.audio
    return {
        "feature_extractor_type": "VoxtralRealtimeFeatureExtractor", "feature_size": a.num_mel_bins,
        "global_log_mel_max": a.global_log_mel_max, "hop_length": a.hop_length, "n_fft": a.window_size,
        "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True,
        "sampling_rate": a.sampling_rate, "win_length": a.window_size,
    }  # fmt: skip


HF_GENERATION = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 11}


def _randomize(model: VoxtralRealtime, gen: torch.Generator) -> None:
    """O(1) activations: matrices ~ N(0, 1/fan_in); norm scales ~ 1 + N(0, 0.2²); biases ~ N(0, 0.2²)."""
    for name, p in model.named_parameters():
        if p.dim() == 1:
            base = 1.0 if name.endswith("norm.weight") else 0.0
            p.data = base + 0.2 * torch.randn(p.shape, generator=gen)
        elif "tok_embeddings" in name:
            p.data = torch.randn(p.shape, generator=gen)
        else:
            p.data = torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5


def _write_hf(root: Path, cfg: VoxtralRealtimeConfig, state: dict[str, torch.Tensor]) -> None:
    tensors = {}
    for module, w in state.items():
        heads = rope_heads(module, cfg)
        if heads is not None:
            w = native_to_hf_rope(w, heads)
        tensors[checkpoint_name(module, "hf")] = w.to(torch.bfloat16).contiguous()
    save_file(tensors, str(root / "model.safetensors"))
    for name, body in (
        ("config.json", hf_config(cfg)),
        ("preprocessor_config.json", hf_preprocessor(cfg)),
        ("generation_config.json", HF_GENERATION),
    ):
        (root / name).write_text(json.dumps(body, indent=2), encoding="utf-8")


def write_random_realtime_checkpoint(
    root: str | Path,
    layout: str = "mistral",
    preset: str = "tiny",
    seed: int = 0,
    tekken: bool = True,
    delay_ms: int = 480,
) -> Path:
    """Write a random checkpoint in ``layout`` ("mistral" or "hf") to ``root`` and return it; its tekken.json
    (``tekken``) defaults streams to ``delay_ms``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    params = preset_params(preset)
    cfg = parse_params(params)
    gen = torch.Generator().manual_seed(seed)
    model = VoxtralRealtime(cfg)
    _randomize(model, gen)
    state = model.state_dict()
    if layout == "mistral":
        tensors = {checkpoint_name(m, "mistral"): w.to(torch.bfloat16).contiguous() for m, w in state.items()}
        save_file(tensors, str(root / "consolidated.safetensors"))
        (root / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
    elif layout == "hf":
        _write_hf(root, cfg, state)
    else:
        raise ValueError(f"layout must be 'mistral' or 'hf', not {layout!r}")
    if tekken:
        write_voxtral_realtime_tekken(root / "tekken.json", delay_ms)
    return root
