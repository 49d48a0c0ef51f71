"""Parse a Voxtral ASR (Mini 3B / Small 24B) `params.json` or Hugging Face `config.json` into frozen configs.

Both layouts become the same :class:`VoxtralASRConfig`. Keys that change the computation become fields, keys
that are informational or training-only are accepted by name, anything else raises ``ValueError`` naming the
key, and a supported key with an unsupported value (a causal encoder, biases in the decoder, RoPE scaling…)
raises too, so a checkpoint we do not understand is never run silently.
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
    window_size: int = 400
    global_log_mel_max: float | None = None
    """Fixed clamp reference; None (the 3B) clamps at the max of each request's padded audio."""


@dataclass(frozen=True)
class EncoderConfig:
    """The Whisper-large-v3-style bidirectional audio encoder."""

    dim: int
    n_layers: int
    n_heads: int
    head_dim: int
    hidden_dim: int
    max_source_positions: int = 1500
    """Encoder frames per chunk; the chunk is 2x this many mel frames (3000 = 30 s)."""
    norm_eps: float = 1e-5
    audio: AudioEncodingConfig = AudioEncodingConfig()

    @property
    def chunk_frames(self) -> int:
        """Mel frames per encoder chunk (the conv stem halves them)."""
        return 2 * self.max_source_positions

    @property
    def chunk_samples(self) -> int:
        """Audio samples per encoder chunk (480 000 = 30 s at 16 kHz)."""
        return self.chunk_frames * self.audio.hop_length


@dataclass(frozen=True)
class VoxtralASRConfig:
    """Everything the checkpoint says about a Voxtral ASR model."""

    encoder: EncoderConfig
    decoder: DecoderConfig
    downsample_factor: int = 4
    """Encoder frames stacked into one audio token (4 x 20 ms = 80 ms)."""
    audio_token_id: int | None = None
    """`[AUDIO]` id when the config states it (HF); the native layout takes it from tekken.json."""

    @property
    def tokens_per_chunk(self) -> int:
        """Audio tokens (`[AUDIO]` placeholders) per encoder chunk: 375 for 30 s."""
        return self.encoder.max_source_positions // self.downsample_factor


# ---- Mistral native params.json ---------------------------------------------------------------------------

_TOP_KNOWN = {
    "dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "vocab_size", "rope_theta", "norm_eps",
    "max_seq_len", "tied_embeddings", "multimodal",
}  # fmt: skip
# informational; the last three are also checked for supported values
_TOP_IGNORED = {
    "model_type", "model_parallel", "max_position_embeddings", "model_max_length", "use_biases", "causal",
    "sliding_window",
}  # fmt: skip
_ENC_KNOWN = {
    "dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "max_source_positions", "norm_eps",
    "audio_encoding_args", "causal", "pos_embed", "ffn_type", "norm_type", "use_biases", "sliding_window",
}  # fmt: skip
_ENC_IGNORED = {"vocab_size", "use_cache", "rope_theta"}  # Whisper's unused text vocab; no cache, no RoPE
_AUDIO_KNOWN = {
    "sampling_rate", "num_mel_bins", "hop_length", "window_size", "global_log_mel_max", "transcription_format",
    "chunk_length_s",
}  # fmt: skip
_AUDIO_IGNORED = {"frame_rate"}  # derived: sampling_rate / hop / 2 / downsample_factor


def _check_unsupported_values(top: dict[str, Any], enc: dict[str, Any]) -> None:
    for key, ok in (("use_biases", False), ("causal", True), ("sliding_window", None)):
        require(top.get(key, ok) == ok, key, top.get(key))
    for key, ok in (
        ("causal", False),
        ("pos_embed", "sinusoidal"),
        ("ffn_type", "gelu"),
        ("use_biases", True),
    ):
        require(enc.get(key, ok) == ok, f"encoder_args.{key}", enc.get(key))
    require(
        enc.get("norm_type", "layer_norm") == "layer_norm", "encoder_args.norm_type", enc.get("norm_type")
    )
    require(enc.get("sliding_window") is None, "encoder_args.sliding_window", enc.get("sliding_window"))
    require(
        enc.get("n_kv_heads", enc["n_heads"]) == enc["n_heads"],
        "encoder_args.n_kv_heads",
        enc.get("n_kv_heads"),
    )


def parse_params(params: dict[str, Any]) -> VoxtralASRConfig:
    """Build the config from a parsed native ``params.json``; ``ValueError`` names any unsupported key."""
    try:
        return _parse_params(params)
    except KeyError as exc:
        raise ValueError(f"params.json lacks required key {exc.args[0]!r}") from exc


def _parse_params(params: dict[str, Any]) -> VoxtralASRConfig:
    take_keys(params, _TOP_KNOWN, _TOP_IGNORED, "params")
    mm = params.get("multimodal")
    if not isinstance(mm, dict) or "whisper_model_args" not in mm:
        raise ValueError("params.json has no multimodal.whisper_model_args: not a Voxtral ASR checkpoint")
    whisper = take_keys(mm, {"whisper_model_args"}, set(), "multimodal")["whisper_model_args"]
    whisper = take_keys(whisper, {"encoder_args", "downsample_args"}, set(), "whisper_model_args")
    enc = take_keys(whisper["encoder_args"], _ENC_KNOWN, _ENC_IGNORED, "encoder_args")
    audio = take_keys(enc.get("audio_encoding_args", {}), _AUDIO_KNOWN, _AUDIO_IGNORED, "audio_encoding_args")
    down = take_keys(whisper.get("downsample_args", {}), {"downsample_factor"}, set(), "downsample_args")
    _check_unsupported_values(params, enc)
    fmt = audio.pop("transcription_format", "instruct")
    require(fmt == "instruct", "audio_encoding_args.transcription_format", fmt)
    chunk_s = audio.pop("chunk_length_s", None)
    encoder = EncoderConfig(
        dim=enc["dim"],
        n_layers=enc["n_layers"],
        n_heads=enc["n_heads"],
        head_dim=enc.get("head_dim", enc["dim"] // enc["n_heads"]),
        hidden_dim=enc["hidden_dim"],
        max_source_positions=enc.get("max_source_positions", 1500),
        norm_eps=enc.get("norm_eps", 1e-5),
        audio=AudioEncodingConfig(**audio),
    )
    _check_chunk_length(encoder, chunk_s)
    keys = ("dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "vocab_size")
    decoder = DecoderConfig(
        **{k: params[k] for k in keys},
        rope_theta=params.get("rope_theta", 100_000_000.0),
        norm_eps=params.get("norm_eps", 1e-5),
        max_seq_len=params.get("max_seq_len", 131_072),
        tied_embeddings=bool(params.get("tied_embeddings", False)),
    )
    return VoxtralASRConfig(encoder, decoder, down.get("downsample_factor", 4))


def _check_chunk_length(encoder: EncoderConfig, chunk_s: float | None) -> None:
    if chunk_s is not None:
        implied = encoder.chunk_samples / encoder.audio.sampling_rate
        require(
            abs(chunk_s - implied) < 1e-6, f"chunk_length_s (max_source_positions implies {implied})", chunk_s
        )


# ---- Hugging Face config.json ------------------------------------------------------------------------------

_HF_TOP_KNOWN = {"audio_config", "text_config", "audio_token_id", "projector_hidden_act", "model_type"}
_HF_TOP_IGNORED = {
    "architectures", "dtype", "torch_dtype", "transformers_version", "hidden_size", "vocab_size", "pad_token_id",
    "bos_token_id", "eos_token_id", "tie_word_embeddings", "use_cache",
}  # fmt: skip
# informational or training-only
_HF_COMMON_IGNORED = {
    "dtype", "torch_dtype", "initializer_range", "attention_dropout", "dropout", "use_cache", "model_type",
    "bos_token_id", "eos_token_id", "pad_token_id", "transformers_version",
}  # fmt: skip
_HF_AUDIO_KNOWN = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "head_dim",
    "num_key_value_heads", "max_source_positions", "num_mel_bins", "activation_function", "scale_embedding",
}  # fmt: skip
_HF_AUDIO_IGNORED = _HF_COMMON_IGNORED | {"activation_dropout", "layerdrop", "vocab_size"}
_HF_TEXT_KNOWN = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "head_dim",
    "num_key_value_heads", "vocab_size", "rope_theta", "rope_parameters", "rope_scaling", "rms_norm_eps",
    "max_position_embeddings", "tie_word_embeddings", "sliding_window", "attention_bias", "mlp_bias", "hidden_act",
    "pretraining_tp",
}  # fmt: skip
_HF_TEXT_IGNORED = _HF_COMMON_IGNORED
_HF_FEATURE_KNOWN = {"sampling_rate", "feature_size", "hop_length", "n_fft"}
_HF_FEATURE_IGNORED = {
    "chunk_length", "n_samples", "nb_max_frames", "dither", "padding_side", "padding_value",
    "return_attention_mask", "feature_extractor_type", "processor_class",
}  # fmt: skip


def _rope_theta(text: dict[str, Any]) -> float:
    rope = dict(text.get("rope_parameters") or {})
    scaling = text.get("rope_scaling")
    require(
        not scaling or scaling.get("rope_type", "default") == "default", "text_config.rope_scaling", scaling
    )
    require(rope.get("rope_type", "default") == "default", "text_config.rope_parameters.rope_type", rope)
    return float(rope.get("rope_theta", text.get("rope_theta", 100_000_000.0)))


def parse_hf_config(config: dict[str, Any], preprocessor: dict[str, Any] | None = None) -> VoxtralASRConfig:
    """Build the config from a parsed HF ``config.json`` (+ optional ``preprocessor_config.json``)."""
    try:
        return _parse_hf_config(config, preprocessor)
    except KeyError as exc:
        raise ValueError(f"config.json lacks required key {exc.args[0]!r}") from exc


def _parse_hf_config(config: dict[str, Any], preprocessor: dict[str, Any] | None) -> VoxtralASRConfig:
    top = take_keys(config, _HF_TOP_KNOWN, _HF_TOP_IGNORED, "config")
    require(top.get("model_type") == "voxtral", "model_type", top.get("model_type"))
    require(
        top.get("projector_hidden_act", "gelu") == "gelu",
        "projector_hidden_act",
        top.get("projector_hidden_act"),
    )
    audio = take_keys(top["audio_config"], _HF_AUDIO_KNOWN, _HF_AUDIO_IGNORED, "audio_config")
    text = take_keys(top["text_config"], _HF_TEXT_KNOWN, _HF_TEXT_IGNORED, "text_config")
    feat = take_keys(preprocessor or {}, _HF_FEATURE_KNOWN, _HF_FEATURE_IGNORED, "preprocessor_config")
    require(audio.get("activation_function", "gelu") == "gelu", "audio_config.activation_function", audio)
    require(not audio.get("scale_embedding", False), "audio_config.scale_embedding", True)
    heads = audio["num_attention_heads"]
    require(audio.get("num_key_value_heads", heads) == heads, "audio_config.num_key_value_heads", audio)
    for key, ok in (
        ("attention_bias", False),
        ("mlp_bias", False),
        ("hidden_act", "silu"),
        ("sliding_window", None),
    ):
        require(text.get(key, ok) == ok, f"text_config.{key}", text.get(key))
    require(text.get("pretraining_tp", 1) == 1, "text_config.pretraining_tp", text.get("pretraining_tp"))
    # HF stacks frames by reshaping to audio_config.intermediate_size, which defines the downsample factor.
    down, rest = divmod(audio["intermediate_size"], audio["hidden_size"])
    require(rest == 0, "audio_config.intermediate_size (must be a multiple of hidden_size)", audio)
    n_mels = audio.get("num_mel_bins", 128)
    require(
        feat.get("feature_size", n_mels) == n_mels,
        "preprocessor_config.feature_size",
        feat.get("feature_size"),
    )
    mel = AudioEncodingConfig(
        feat.get("sampling_rate", 16_000), n_mels, feat.get("hop_length", 160), feat.get("n_fft", 400)
    )
    encoder = EncoderConfig(
        dim=audio["hidden_size"],
        n_layers=audio["num_hidden_layers"],
        n_heads=heads,
        head_dim=audio.get("head_dim", audio["hidden_size"] // heads),
        hidden_dim=audio["intermediate_size"],
        max_source_positions=audio.get("max_source_positions", 1500),
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
        rope_theta=_rope_theta(text),
        norm_eps=text.get("rms_norm_eps", 1e-5),
        max_seq_len=text.get("max_position_embeddings", 131_072),
        tied_embeddings=bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
    )
    return VoxtralASRConfig(encoder, decoder, down, top.get("audio_token_id"))


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def load_config(root: str | Path, fmt: str) -> VoxtralASRConfig:
    """Read the config of a checkpoint directory in layout ``fmt`` ("mistral" or "hf")."""
    root = Path(root)
    if fmt == "mistral":
        return parse_params(_read_json(root / "params.json"))
    pre = root / "preprocessor_config.json"
    return parse_hf_config(_read_json(root / "config.json"), _read_json(pre) if pre.is_file() else None)
