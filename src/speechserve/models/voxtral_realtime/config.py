"""Parse a Voxtral Realtime `params.json` or Hugging Face `config.json` into one frozen config.

Both layouts become the same :class:`VoxtralRealtimeConfig`. Keys that change the computation become fields,
informational or training-only keys are accepted by name, anything else raises ``ValueError`` naming the key,
and a supported key with a value we cannot run (a bidirectional encoder, sinusoidal positions, untied
embeddings, a list of sliding windows …) raises too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechserve.checkpoints.config_keys import require, take_keys
from speechserve.checkpoints.mistral_config import DecoderConfig


@dataclass(frozen=True)
class AudioEncodingConfig:
    """The log-mel front end (`encoder_args.audio_encoding_args`)."""

    sampling_rate: int = 16_000
    num_mel_bins: int = 128
    hop_length: int = 160
    """Samples between mel frames (10 ms)."""
    window_size: int = 400
    """STFT window = n_fft (25 ms)."""
    global_log_mel_max: float = 1.5
    """Fixed clamp reference: log-mels are floored at ``global_log_mel_max − 8`` (a stream has no global max)."""


@dataclass(frozen=True)
class EncoderConfig:
    """The causal Whisper-style audio encoder: causal conv stem, RoPE, sliding-window attention, SwiGLU."""

    dim: int
    n_layers: int
    n_heads: int
    head_dim: int
    """Attention width is ``n_heads × head_dim`` (2048 in the release, wider than ``dim`` = 1280)."""
    hidden_dim: int
    rope_theta: float = 1_000_000.0
    norm_eps: float = 1e-5
    sliding_window: int = 750
    """Keys each encoder frame attends to, itself included (750 frames = 15 s)."""
    audio: AudioEncodingConfig = AudioEncodingConfig()


@dataclass(frozen=True)
class VoxtralRealtimeConfig:
    """Everything the checkpoint says about a Voxtral Realtime model."""

    encoder: EncoderConfig
    decoder: DecoderConfig
    """The Mistral decoder (tied embeddings: logits use the token table)."""
    sliding_window: int = 8192
    """Decoder keys each position attends to, itself included (8192 tokens ≈ 655 s)."""
    downsample_factor: int = 4
    """Encoder frames stacked into one audio embedding (4 × 20 ms = 80 ms)."""
    t_cond_dim: int = 32
    """Bottleneck of the delay conditioning (`ada_rms_norm_t_cond`: dim → 32 → dim)."""

    @property
    def mel_frames_per_token(self) -> int:
        """Mel frames per decoder position (8 = 80 ms): the conv stem halves, the adapter stacks 4."""
        return 2 * self.downsample_factor

    @property
    def samples_per_token(self) -> int:
        """Audio samples per decoder position (1280 = 80 ms at 16 kHz)."""
        return self.mel_frames_per_token * self.encoder.audio.hop_length


# ---- Mistral native params.json ---------------------------------------------------------------------------

_TOP_KNOWN = {
    "dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "vocab_size", "rope_theta", "norm_eps",
    "max_seq_len", "model_max_length", "max_position_embeddings", "tied_embeddings", "sliding_window",
    "multimodal", "ada_rms_norm_t_cond", "ada_rms_norm_t_cond_dim", "use_biases", "causal",
}  # fmt: skip
_TOP_IGNORED = {"model_type", "model_parallel"}
_ENC_KNOWN = {
    "dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "rope_theta", "norm_eps",
    "audio_encoding_args", "causal", "pos_embed", "ffn_type", "norm_type", "use_biases", "sliding_window",
}  # fmt: skip
_ENC_IGNORED = {"vocab_size", "use_cache", "max_source_positions"}  # Whisper's text vocab; no position table
_AUDIO_KNOWN = {
    "sampling_rate", "frame_rate", "num_mel_bins", "hop_length", "window_size", "global_log_mel_max",
    "transcription_format", "chunk_length_s",
}  # fmt: skip


def _check_native_values(top: dict[str, Any], enc: dict[str, Any]) -> None:
    for key, ok in (("use_biases", False), ("causal", True), ("tied_embeddings", True)):
        require(top.get(key, ok) == ok, key, top.get(key))
    require(
        top.get("ada_rms_norm_t_cond", False) is True, "ada_rms_norm_t_cond", top.get("ada_rms_norm_t_cond")
    )
    for key, ok in (
        ("causal", True),
        ("pos_embed", "rope"),
        ("ffn_type", "swiglu"),
        ("norm_type", "rms_norm"),
        ("use_biases", True),
    ):
        require(enc.get(key) == ok, f"encoder_args.{key}", enc.get(key))
    heads = enc["n_heads"]
    require(enc.get("n_kv_heads", heads) == heads, "encoder_args.n_kv_heads", enc.get("n_kv_heads"))
    for where, window in (("sliding_window", top.get("sliding_window")), ("encoder_args.sliding_window", enc.get("sliding_window"))):  # fmt: skip
        require(isinstance(window, int) and window > 0, where, window)


def _audio_config(audio: dict[str, Any], downsample: int) -> AudioEncodingConfig:
    fmt = audio.pop("transcription_format", None)
    require(fmt == "streaming", "audio_encoding_args.transcription_format", fmt)
    chunk = audio.pop("chunk_length_s", None)
    require(chunk is None, "audio_encoding_args.chunk_length_s", chunk)
    require(isinstance(audio.get("global_log_mel_max"), (int, float)), "audio_encoding_args.global_log_mel_max", audio.get("global_log_mel_max"))  # fmt: skip
    frame_rate = audio.pop("frame_rate", None)
    cfg = AudioEncodingConfig(**audio)
    implied = cfg.sampling_rate / (cfg.hop_length * 2 * downsample)
    require(frame_rate is None or abs(frame_rate - implied) < 1e-9, f"audio_encoding_args.frame_rate (the rest implies {implied})", frame_rate)  # fmt: skip
    return cfg


def parse_params(params: dict[str, Any]) -> VoxtralRealtimeConfig:
    """Build the config from a parsed native ``params.json``; ``ValueError`` names any unsupported key."""
    try:
        return _parse_params(params)
    except KeyError as exc:
        raise ValueError(f"params.json lacks required key {exc.args[0]!r}") from exc


def _parse_params(params: dict[str, Any]) -> VoxtralRealtimeConfig:
    top = take_keys(params, _TOP_KNOWN, _TOP_IGNORED, "params")
    mm = top.get("multimodal")
    if not isinstance(mm, dict) or "whisper_model_args" not in mm:
        raise ValueError(
            "params.json has no multimodal.whisper_model_args: not a Voxtral Realtime checkpoint"
        )
    whisper = take_keys(mm, {"whisper_model_args"}, set(), "multimodal")["whisper_model_args"]
    whisper = take_keys(whisper, {"encoder_args", "downsample_args"}, set(), "whisper_model_args")
    enc = take_keys(whisper["encoder_args"], _ENC_KNOWN, _ENC_IGNORED, "encoder_args")
    audio = take_keys(enc.get("audio_encoding_args", {}), _AUDIO_KNOWN, set(), "audio_encoding_args")
    down = take_keys(whisper.get("downsample_args", {}), {"downsample_factor"}, set(), "downsample_args")
    _check_native_values(top, enc)
    factor = down.get("downsample_factor", 4)
    encoder = EncoderConfig(
        dim=enc["dim"],
        n_layers=enc["n_layers"],
        n_heads=enc["n_heads"],
        head_dim=enc.get("head_dim", enc["dim"] // enc["n_heads"]),
        hidden_dim=enc["hidden_dim"],
        rope_theta=float(enc.get("rope_theta", 1_000_000.0)),
        norm_eps=enc.get("norm_eps", 1e-5),
        sliding_window=enc["sliding_window"],
        audio=_audio_config(audio, factor),
    )
    keys = ("dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "vocab_size")
    max_len = top.get("max_seq_len", top.get("model_max_length", top.get("max_position_embeddings", 131_072)))
    decoder = DecoderConfig(
        **{k: top[k] for k in keys},
        rope_theta=float(top.get("rope_theta", 1_000_000.0)),
        norm_eps=top.get("norm_eps", 1e-5),
        max_seq_len=max_len,
        tied_embeddings=True,
    )
    return VoxtralRealtimeConfig(
        encoder, decoder, top["sliding_window"], factor, top.get("ada_rms_norm_t_cond_dim", 32)
    )


# ---- Hugging Face config.json ------------------------------------------------------------------------------

_HF_TOP_KNOWN = {
    "audio_config", "text_config", "model_type", "projector_hidden_act", "downsample_factor", "audio_length_per_tok",
    "tie_word_embeddings",
}  # fmt: skip
_HF_TOP_IGNORED = {
    "architectures", "dtype", "torch_dtype", "transformers_version", "hidden_size", "vocab_size", "use_cache",
    "default_num_delay_tokens", "pad_token_id", "bos_token_id", "eos_token_id",
}  # fmt: skip
# the delay default comes from tekken.json (the tokenizer builds the prompt); HF's copy is informational
_HF_COMMON_IGNORED = {
    "dtype", "torch_dtype", "initializer_range", "attention_dropout", "use_cache", "model_type", "bos_token_id",
    "eos_token_id", "pad_token_id", "transformers_version",
}  # fmt: skip
_HF_LAYER_KNOWN = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "head_dim",
    "num_key_value_heads", "rope_theta", "rope_parameters", "rope_scaling", "rms_norm_eps", "sliding_window",
    "hidden_act", "attention_bias", "mlp_bias",
}  # fmt: skip
_HF_AUDIO_KNOWN = _HF_LAYER_KNOWN | {"num_mel_bins"}
_HF_AUDIO_IGNORED = _HF_COMMON_IGNORED | {"activation_function", "max_position_embeddings", "vocab_size"}
# activation_function is Whisper's, unused by the SwiGLU MLP; RoPE needs no position table
_HF_TEXT_KNOWN = _HF_LAYER_KNOWN | {"vocab_size", "max_position_embeddings", "tie_word_embeddings"}
_HF_FEATURE_KNOWN = {
    "sampling_rate",
    "feature_size",
    "hop_length",
    "n_fft",
    "win_length",
    "global_log_mel_max",
}
_HF_FEATURE_IGNORED = {
    "feature_extractor_type", "processor_class", "padding_side", "padding_value", "return_attention_mask",
}  # fmt: skip


def _hf_rope_theta(layer: dict[str, Any], where: str) -> float:
    rope = dict(layer.get("rope_parameters") or {})
    require(not layer.get("rope_scaling"), f"{where}.rope_scaling", layer.get("rope_scaling"))
    require(rope.get("rope_type", "default") == "default", f"{where}.rope_parameters.rope_type", rope)
    return float(rope.get("rope_theta", layer.get("rope_theta", 1_000_000.0)))


def _hf_check_layer(layer: dict[str, Any], where: str) -> None:
    require(layer.get("hidden_act", "silu") == "silu", f"{where}.hidden_act", layer.get("hidden_act"))
    for key in ("attention_bias", "mlp_bias"):
        require(not layer.get(key, False), f"{where}.{key}", layer.get(key))
    window = layer.get("sliding_window")
    require(isinstance(window, int) and window > 0, f"{where}.sliding_window", window)


def parse_hf_config(
    config: dict[str, Any], preprocessor: dict[str, Any] | None = None
) -> VoxtralRealtimeConfig:
    """Build the config from a parsed HF ``config.json`` (+ optional ``preprocessor_config.json``)."""
    try:
        return _parse_hf_config(config, preprocessor)
    except KeyError as exc:
        raise ValueError(f"config.json lacks required key {exc.args[0]!r}") from exc


def _parse_hf_config(config: dict[str, Any], preprocessor: dict[str, Any] | None) -> VoxtralRealtimeConfig:
    top = take_keys(config, _HF_TOP_KNOWN, _HF_TOP_IGNORED, "config")
    require(top.get("model_type") == "voxtral_realtime", "model_type", top.get("model_type"))
    require(
        top.get("projector_hidden_act", "gelu") == "gelu",
        "projector_hidden_act",
        top.get("projector_hidden_act"),
    )
    audio = take_keys(top["audio_config"], _HF_AUDIO_KNOWN, _HF_AUDIO_IGNORED, "audio_config")
    text = take_keys(top["text_config"], _HF_TEXT_KNOWN, _HF_COMMON_IGNORED, "text_config")
    feat = take_keys(preprocessor or {}, _HF_FEATURE_KNOWN, _HF_FEATURE_IGNORED, "preprocessor_config")
    _hf_check_layer(audio, "audio_config")
    _hf_check_layer(text, "text_config")
    heads = audio["num_attention_heads"]
    require(audio.get("num_key_value_heads", heads) == heads, "audio_config.num_key_value_heads", audio)
    tied = text.get("tie_word_embeddings", top.get("tie_word_embeddings", True))
    require(tied is True, "text_config.tie_word_embeddings", tied)
    factor = top.get("downsample_factor", 4)
    per_tok = top.get("audio_length_per_tok", 2 * factor)
    require(per_tok == 2 * factor, "audio_length_per_tok (must be 2 x downsample_factor)", per_tok)
    n_mels = audio.get("num_mel_bins", 128)
    require(
        feat.get("feature_size", n_mels) == n_mels,
        "preprocessor_config.feature_size",
        feat.get("feature_size"),
    )
    n_fft = feat.get("n_fft", 400)
    require(feat.get("win_length", n_fft) == n_fft, "preprocessor_config.win_length", feat.get("win_length"))
    mel = AudioEncodingConfig(
        feat.get("sampling_rate", 16_000), n_mels, feat.get("hop_length", 160), n_fft,
        float(feat.get("global_log_mel_max", 1.5)),
    )  # fmt: skip
    encoder = EncoderConfig(
        dim=audio["hidden_size"],
        n_layers=audio["num_hidden_layers"],
        n_heads=heads,
        head_dim=audio.get("head_dim", audio["hidden_size"] // heads),
        hidden_dim=audio["intermediate_size"],
        rope_theta=_hf_rope_theta(audio, "audio_config"),
        norm_eps=audio.get("rms_norm_eps", 1e-5),
        sliding_window=audio["sliding_window"],
        audio=mel,
    )
    decoder = DecoderConfig(
        dim=text["hidden_size"],
        n_layers=text["num_hidden_layers"],
        head_dim=text.get("head_dim", text["hidden_size"] // text["num_attention_heads"]),
        hidden_dim=text["intermediate_size"],
        n_heads=text["num_attention_heads"],
        n_kv_heads=text.get("num_key_value_heads", text["num_attention_heads"]),
        vocab_size=text["vocab_size"],
        rope_theta=_hf_rope_theta(text, "text_config"),
        norm_eps=text.get("rms_norm_eps", 1e-5),
        max_seq_len=text.get("max_position_embeddings", 131_072),
        tied_embeddings=True,
    )
    return VoxtralRealtimeConfig(encoder, decoder, text["sliding_window"], factor, 32)  # HF hard-codes 32


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def load_config(root: str | Path, fmt: str) -> VoxtralRealtimeConfig:
    """The config of the checkpoint in ``root`` (layout ``fmt``: "mistral" or "hf")."""
    root = Path(root)
    if fmt == "mistral":
        return parse_params(_read_json(root / "params.json"))
    pre = root / "preprocessor_config.json"
    return parse_hf_config(_read_json(root / "config.json"), _read_json(pre) if pre.is_file() else None)
