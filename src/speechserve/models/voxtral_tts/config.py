"""Parse a Voxtral TTS `params.json` into frozen config dataclasses.

Every key the release ships is known here: keys that change the computation become fields, keys that are
training-only or informational are accepted and ignored by name, and anything else raises ``ValueError``
naming the key, so a checkpoint we do not understand is never run silently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechserve.checkpoints.config_keys import require, take_keys
from speechserve.checkpoints.mistral_config import DecoderConfig
from speechserve.options import DEFAULT_CFG_ALPHA  # noqa: F401  (the SDK's default, re-exported)

# Audio special tokens inside every codebook (vllm-omni `AudioSpecialTokens`): 0 = [EMPTY_AUDIO], 1 = [END_AUDIO].
N_AUDIO_SPECIAL_TOKENS = 2
END_AUDIO_CODE = 1
EMPTY_AUDIO_CODE = 0
DEFAULT_N_DECODING_STEPS = 7  # params.json has no key; vllm-omni's parser sets 7 (spec §1.2, §9 D6)


def _round_up(n: int, multiple: int) -> int:
    return multiple * ((n + multiple - 1) // multiple)


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.split(","))


@dataclass(frozen=True)
class FlowConfig:
    """The flow-matching acoustic transformer (`acoustic_transformer.*`)."""

    input_dim: int
    dim: int
    n_layers: int
    head_dim: int
    hidden_dim: int
    n_heads: int
    n_kv_heads: int
    norm_eps: float = 1e-5
    n_decoding_steps: int = DEFAULT_N_DECODING_STEPS


@dataclass(frozen=True)
class CodecConfig:
    """The causal Voxtral codec (`audio_tokenizer.*`): encoder (optional weights) and decoder."""

    sampling_rate: int
    patch_size: int
    patch_proj_kernel_size: int
    semantic_codebook_size: int
    semantic_dim: int
    acoustic_codebook_size: int
    acoustic_dim: int
    dim: int
    hidden_dim: int
    head_dim: int
    n_heads: int
    n_kv_heads: int
    qk_norm_eps: float
    norm_eps: float
    attn_sliding_window_size: int
    half_attn_window_upon_downsampling: bool
    encoder_transformer_lengths: tuple[int, ...] = (2, 2, 2, 2)
    encoder_convs_kernels: tuple[int, ...] = (4, 4, 4, 3)
    encoder_convs_strides: tuple[int, ...] = (2, 2, 2, 1)
    decoder_transformer_lengths: tuple[int, ...] = (2, 2, 2, 2)
    decoder_convs_kernels: tuple[int, ...] = (3, 4, 4, 4)
    decoder_convs_strides: tuple[int, ...] = (1, 2, 2, 2)
    voices: dict[str, int] = field(default_factory=dict)

    @property
    def latent_dim(self) -> int:
        return self.semantic_dim + self.acoustic_dim

    @property
    def samples_per_frame(self) -> int:
        """PCM samples per 80 ms frame: patch size x total encoder stride (240 x 8 = 1920)."""
        return self.patch_size * math.prod(self.encoder_convs_strides)

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.samples_per_frame

    def encoder_windows(self) -> list[int]:
        """Attention window of each encoder transformer (16, 8, 4, 2 for the release)."""
        windows, w = [], self.attn_sliding_window_size
        for stride in self.encoder_convs_strides:
            windows.append(w)
            if self.half_attn_window_upon_downsampling and stride > 1:
                w //= 2
        return windows

    def decoder_windows(self) -> list[int]:
        """Attention window of each decoder transformer, threaded on from the encoder (2, 4, 8, 16)."""
        w = self.attn_sliding_window_size
        for stride in self.encoder_convs_strides:
            if self.half_attn_window_upon_downsampling and stride > 1:
                w //= 2
        windows = []
        for stride in self.decoder_convs_strides:  # conv i (up-sampling) runs before transformer i
            if self.half_attn_window_upon_downsampling and stride > 1:
                w *= 2
            windows.append(w)
        return windows


@dataclass(frozen=True)
class AudioCodesConfig:
    """How the 37 per-frame codes are numbered and embedded."""

    semantic_codebook_size: int
    acoustic_codebook_size: int
    n_acoustic_codebook: int
    frame_rate: float
    sampling_rate: int
    audio_token_id: int
    begin_audio_token_id: int
    bos_token_id: int

    @property
    def n_codebooks(self) -> int:
        return 1 + self.n_acoustic_codebook

    @property
    def codebook_sizes(self) -> list[int]:
        """Sizes with the two special codes: [8194, 23, 23, ...]."""
        sem = self.semantic_codebook_size + N_AUDIO_SPECIAL_TOKENS
        return [sem] + [self.acoustic_codebook_size + N_AUDIO_SPECIAL_TOKENS] * self.n_acoustic_codebook

    @property
    def offsets(self) -> list[int]:
        """First row of each codebook in the shared audio embedding table."""
        out, acc = [], 0
        for size in self.codebook_sizes:
            out.append(acc)
            acc += size
        return out

    @property
    def embedding_rows(self) -> int:
        return _round_up(sum(self.codebook_sizes), 128)

    @property
    def semantic_head_rows(self) -> int:
        return _round_up(self.codebook_sizes[0], 128)


@dataclass(frozen=True)
class VoxtralTTSConfig:
    """Everything `params.json` says about a Voxtral TTS checkpoint."""

    backbone: DecoderConfig
    flow: FlowConfig
    codec: CodecConfig
    codes: AudioCodesConfig

    @property
    def voices(self) -> dict[str, int]:
        return self.codec.voices


_TOP_KNOWN = {"dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "rope_theta", "norm_eps"}
_TOP_KNOWN |= {"vocab_size", "max_seq_len", "multimodal"}
_TOP_IGNORED = {"model_type", "max_position_embeddings", "tied_embeddings", "use_biases"}
_MM_KNOWN = {"bos_token_id", "audio_model_args", "audio_tokenizer_args"}
_AUDIO_MODEL_KNOWN = {"semantic_codebook_size", "acoustic_codebook_size", "n_acoustic_codebook"}
_AUDIO_MODEL_KNOWN |= {
    "audio_encoding_args",
    "audio_token_id",
    "begin_audio_token_id",
    "acoustic_transformer_args",
}
_AUDIO_MODEL_KNOWN |= {"input_embedding_concat_type"}
# Training-time switches with no effect on inference (spec §1.2).
_AUDIO_MODEL_IGNORED = {"p_uncond", "text_feature_bugged", "condition_dropped_token_id"}
_ENCODING_KNOWN = {"codebook_pattern", "num_codebooks", "sampling_rate", "frame_rate"}
_ENCODING_IGNORED = {
    "interleave_audio_tokens_per_segment",
    "interleave_text_tokens_per_segment",
    "single_trailing_segment",
}
_FLOW_KNOWN = {"input_dim", "dim", "n_layers", "head_dim", "hidden_dim", "n_heads", "n_kv_heads", "norm_eps"}
_FLOW_KNOWN |= {"n_decoding_steps", "use_biases"}
_FLOW_IGNORED = {"rope_theta", "sigma", "sigma_max"}  # no RoPE in the flow head; sigmas are training-only
_CODEC_KNOWN = {
    "channels", "sampling_rate", "pretransform_patch_size", "patch_proj_kernel_size", "semantic_codebook_size",
    "semantic_dim", "acoustic_codebook_size", "acoustic_dim", "conv_weight_norm", "causal",
    "attn_sliding_window_size", "half_attn_window_upon_downsampling", "dim", "hidden_dim", "head_dim", "n_heads",
    "n_kv_heads", "qk_norm_eps", "qk_norm", "use_biases", "norm_eps", "layer_scale", "voice",
    "decoder_transformer_lengths_str", "decoder_convs_kernels_str", "decoder_convs_strides_str",
    "encoder_transformer_lengths_str", "encoder_convs_kernels_str", "encoder_convs_strides_str",
}  # fmt: skip
_CODEC_IGNORED = {"layer_scale_init"}  # init only; trained scales are in the checkpoint


def parse_params(params: dict[str, Any]) -> VoxtralTTSConfig:
    """Build the frozen config from a parsed ``params.json``; ``ValueError`` names any unsupported key."""
    top = take_keys(params, _TOP_KNOWN, _TOP_IGNORED, "params")
    require(not params.get("use_biases", False), "use_biases", params.get("use_biases"))
    if "multimodal" not in top:
        raise ValueError("params.json has no 'multimodal' section: not a Voxtral TTS checkpoint")
    mm = take_keys(top.pop("multimodal"), _MM_KNOWN, set(), "multimodal")
    am = take_keys(mm["audio_model_args"], _AUDIO_MODEL_KNOWN, _AUDIO_MODEL_IGNORED, "audio_model_args")
    enc = take_keys(
        am.get("audio_encoding_args", {}), _ENCODING_KNOWN, _ENCODING_IGNORED, "audio_encoding_args"
    )
    flow = take_keys(am["acoustic_transformer_args"], _FLOW_KNOWN, _FLOW_IGNORED, "acoustic_transformer_args")
    codec = take_keys(mm["audio_tokenizer_args"], _CODEC_KNOWN, _CODEC_IGNORED, "audio_tokenizer_args")

    require(
        enc.get("codebook_pattern", "parallel") == "parallel", "codebook_pattern", enc.get("codebook_pattern")
    )
    concat = am.get("input_embedding_concat_type", "sum")
    require(concat == "sum", "input_embedding_concat_type", concat)
    require(not flow.pop("use_biases", False), "acoustic_transformer_args.use_biases", True)
    for key, expected in (("channels", 1), ("causal", True), ("conv_weight_norm", True), ("qk_norm", True)):
        require(codec.get(key, expected) == expected, f"audio_tokenizer_args.{key}", codec.get(key))
    for key, expected in (("use_biases", False), ("layer_scale", True)):
        require(codec.get(key, expected) == expected, f"audio_tokenizer_args.{key}", codec.get(key))

    backbone = DecoderConfig(**top)
    codes = AudioCodesConfig(
        semantic_codebook_size=am["semantic_codebook_size"],
        acoustic_codebook_size=am["acoustic_codebook_size"],
        n_acoustic_codebook=am["n_acoustic_codebook"],
        frame_rate=float(enc.get("frame_rate", 12.5)),
        sampling_rate=int(enc.get("sampling_rate", codec["sampling_rate"])),
        audio_token_id=am["audio_token_id"],
        begin_audio_token_id=am["begin_audio_token_id"],
        bos_token_id=mm.get("bos_token_id", 1),
    )
    require(
        enc.get("num_codebooks", codes.n_codebooks) == codes.n_codebooks,
        "num_codebooks",
        enc.get("num_codebooks"),
    )
    codec_cfg = CodecConfig(
        sampling_rate=codec["sampling_rate"],
        patch_size=codec["pretransform_patch_size"],
        patch_proj_kernel_size=codec["patch_proj_kernel_size"],
        semantic_codebook_size=codec["semantic_codebook_size"],
        semantic_dim=codec["semantic_dim"],
        acoustic_codebook_size=codec["acoustic_codebook_size"],
        acoustic_dim=codec["acoustic_dim"],
        dim=codec["dim"],
        hidden_dim=codec["hidden_dim"],
        head_dim=codec["head_dim"],
        n_heads=codec["n_heads"],
        n_kv_heads=codec["n_kv_heads"],
        qk_norm_eps=codec["qk_norm_eps"],
        norm_eps=codec["norm_eps"],
        attn_sliding_window_size=codec["attn_sliding_window_size"],
        half_attn_window_upon_downsampling=codec["half_attn_window_upon_downsampling"],
        encoder_transformer_lengths=_ints(codec.get("encoder_transformer_lengths_str", "2,2,2,2")),
        encoder_convs_kernels=_ints(codec.get("encoder_convs_kernels_str", "4,4,4,3")),
        encoder_convs_strides=_ints(codec.get("encoder_convs_strides_str", "2,2,2,1")),
        decoder_transformer_lengths=_ints(codec.get("decoder_transformer_lengths_str", "2,2,2,2")),
        decoder_convs_kernels=_ints(codec.get("decoder_convs_kernels_str", "3,4,4,4")),
        decoder_convs_strides=_ints(codec.get("decoder_convs_strides_str", "1,2,2,2")),
        voices=dict(codec.get("voice", {})),
    )
    require(
        codec_cfg.n_heads == codec_cfg.n_kv_heads, "audio_tokenizer_args.n_kv_heads", codec_cfg.n_kv_heads
    )
    require(
        math.isclose(codec_cfg.frame_rate, codes.frame_rate),
        "audio_encoding_args.frame_rate",
        codes.frame_rate,
    )
    return VoxtralTTSConfig(backbone=backbone, flow=FlowConfig(**flow), codec=codec_cfg, codes=codes)


def load_params(model_dir: str | Path) -> VoxtralTTSConfig:
    """Read and parse ``<model_dir>/params.json``."""
    path = Path(model_dir) / "params.json"
    with path.open(encoding="utf-8") as f:
        return parse_params(json.load(f))
