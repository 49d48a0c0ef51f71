"""Parse a Dia ``config.json`` (three schemas) and a DAC config into frozen dataclasses, strictly.

Schemas read (spec §1, golden README "Checkpoint generations"):

- **hub / nari-labs** (``nari-labs/Dia-1.6B-0626`` ``config.json``, what ``dia`` HEAD's pydantic ``DiaConfig``
  writes): ``encoder_config`` / ``decoder_config`` with ``rope_theta``; audio ids at the top level;
- **transformers** (``DiaConfig.save_pretrained`` of transformers ≥ 5): ``rope_parameters``; the audio ids
  inside ``decoder_config`` (the top-level ones are null);
- **v0.1** (``nari-labs/Dia-1.6B``, April 2025): ``version`` / ``model`` / ``data`` / ``training``. Parsed
  (``generation == "v0.1"``) so a loader can say precisely why it will not run it: v0.1 *computes*
  differently (RoPE in cross-attention, another sampler).

Keys that change the computation become fields, training-only or informational keys are ignored by name, and
anything else raises ``ValueError`` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from speechserve.checkpoints.config_keys import require, take_keys

GENERATION_0626 = "0626"
GENERATION_V01 = "v0.1"


@dataclass(frozen=True)
class DiaEncoderConfig:
    """The text encoder (12 × 1024 in Dia-1.6B): bidirectional, RoPE, attention scale 1."""

    vocab_size: int
    """Byte vocabulary (256)."""
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    """Per head; heads × head_dim may differ from hidden_size (2048 vs 1024 in the release)."""
    intermediate_size: int
    """SwiGLU width."""
    max_positions: int
    """Longest text in bytes (1024); longer texts are refused."""
    norm_eps: float
    rope_theta: float


@dataclass(frozen=True)
class DiaDecoderConfig:
    """The audio decoder (18 × 2048 in Dia-1.6B): causal GQA self-attention with RoPE, cross-attention over
    the encoder output without RoPE (0626), SwiGLU; 9 channel embeddings summed in, 9 × 1028 logits out."""

    vocab_size: int
    """Audio ids per channel: 1024 DAC codes + EOS + PAD + BOS + 1 unused (1028)."""
    num_channels: int
    """DAC codebooks (9)."""
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    cross_hidden_size: int
    """Width of the keys/values' input = the encoder's hidden size."""
    cross_num_heads: int
    cross_num_kv_heads: int
    cross_head_dim: int
    intermediate_size: int
    max_positions: int
    """Delayed rows per utterance, BOS and audio prompt included (3072 ≈ 35.7 s)."""
    norm_eps: float
    rope_theta: float


@dataclass(frozen=True)
class DiaConfig:
    """Everything a Dia ``config.json`` says."""

    encoder: DiaEncoderConfig
    decoder: DiaDecoderConfig
    delay_pattern: tuple[int, ...]
    """Per-channel delay in frames ([0, 8, 9, …, 15])."""
    bos_id: int
    eos_id: int
    pad_id: int
    generation: str = GENERATION_0626
    """"0626" (no RoPE in cross-attention, CFG filter sampler) or "v0.1" (parsed, not run)."""

    @property
    def max_delay(self) -> int:
        return max(self.delay_pattern)

    @property
    def n_codes(self) -> int:
        """Real DAC codes per codebook (ids below EOS)."""
        return self.eos_id


_GENERIC_IGNORED = {
    "_name_or_path", "transformers_version", "torch_dtype", "dtype", "initializer_range", "use_cache",
    "output_attentions", "output_hidden_states", "return_dict", "tie_word_embeddings", "attention_dropout",
}  # fmt: skip
"""transformers' PretrainedConfig bookkeeping: no effect on inference."""
_TOP_KNOWN = {"encoder_config", "decoder_config", "delay_pattern", "bos_token_id", "eos_token_id"}
_TOP_KNOWN |= {"pad_token_id", "model_type", "architectures", "is_encoder_decoder", "norm_eps"}
_STACK_KNOWN = {
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
}
_STACK_KNOWN |= {"head_dim", "intermediate_size", "max_position_embeddings", "norm_eps", "rope_theta"}
_STACK_KNOWN |= {"rope_scaling", "rope_parameters", "hidden_act", "model_type"}
_DECODER_KNOWN = _STACK_KNOWN | {"num_channels", "cross_hidden_size", "cross_num_attention_heads"}
_DECODER_KNOWN |= {
    "cross_num_key_value_heads",
    "cross_head_dim",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
}


def parse_config(config: dict[str, Any]) -> DiaConfig:
    """The frozen config of any of the three schemas; ``ValueError`` names an unsupported key or value."""
    if "encoder_config" in config or "decoder_config" in config:
        return _parse_current(config)
    if "model" in config and "data" in config:
        return _parse_v01(config)
    raise ValueError(
        "config.json has neither encoder_config/decoder_config nor model/data: not a Dia checkpoint"
    )


def _rope_theta(stack: dict[str, Any], where: str) -> float:
    require(stack.get("rope_scaling") is None, f"{where}.rope_scaling", stack.get("rope_scaling"))
    params = stack.get("rope_parameters")
    if params is not None:
        params = take_keys(params, {"rope_theta", "rope_type"}, set(), f"{where}.rope_parameters")
        require(
            params.get("rope_type", "default") == "default", f"{where}.rope_type", params.get("rope_type")
        )
        return float(params["rope_theta"])
    return float(stack.get("rope_theta", 10000.0))


def _stack(stack: dict[str, Any], where: str, known: set[str]) -> dict[str, Any]:
    d = take_keys(stack, known, _GENERIC_IGNORED, where)
    require(d.get("hidden_act", "silu") == "silu", f"{where}.hidden_act", d.get("hidden_act"))
    expected_type = "dia_encoder" if where == "encoder_config" else "dia_decoder"
    require(d.get("model_type", expected_type) == expected_type, f"{where}.model_type", d.get("model_type"))
    return d


def _parse_current(config: dict[str, Any]) -> DiaConfig:
    top = take_keys(config, _TOP_KNOWN, _GENERIC_IGNORED, "config")
    require(top.get("model_type", "dia") == "dia", "model_type", top.get("model_type"))
    enc = _stack(top["encoder_config"], "encoder_config", _STACK_KNOWN)
    dec = _stack(top["decoder_config"], "decoder_config", _DECODER_KNOWN)
    encoder = DiaEncoderConfig(
        vocab_size=enc["vocab_size"],
        hidden_size=enc["hidden_size"],
        num_layers=enc["num_hidden_layers"],
        num_heads=enc["num_attention_heads"],
        num_kv_heads=enc.get("num_key_value_heads") or enc["num_attention_heads"],
        head_dim=enc["head_dim"],
        intermediate_size=enc["intermediate_size"],
        max_positions=enc["max_position_embeddings"],
        norm_eps=float(enc.get("norm_eps", top.get("norm_eps", 1e-5))),
        rope_theta=_rope_theta(enc, "encoder_config"),
    )
    decoder = DiaDecoderConfig(
        vocab_size=dec["vocab_size"],
        num_channels=dec["num_channels"],
        hidden_size=dec["hidden_size"],
        num_layers=dec["num_hidden_layers"],
        num_heads=dec["num_attention_heads"],
        num_kv_heads=dec["num_key_value_heads"],
        head_dim=dec["head_dim"],
        cross_hidden_size=dec["cross_hidden_size"],
        cross_num_heads=dec["cross_num_attention_heads"],
        cross_num_kv_heads=dec["cross_num_key_value_heads"],
        cross_head_dim=dec["cross_head_dim"],
        intermediate_size=dec["intermediate_size"],
        max_positions=dec["max_position_embeddings"],
        norm_eps=float(dec.get("norm_eps", top.get("norm_eps", 1e-5))),
        rope_theta=_rope_theta(dec, "decoder_config"),
    )
    ids = {}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = top.get(key)
        ids[key] = value if value is not None else dec.get(key)  # transformers ≥ 5 keeps them in the decoder
        require(isinstance(ids[key], int), key, ids[key])
    return _checked(
        DiaConfig(
            encoder=encoder,
            decoder=decoder,
            delay_pattern=tuple(top.get("delay_pattern", (0, 8, 9, 10, 11, 12, 13, 14, 15))),
            bos_id=ids["bos_token_id"],
            eos_id=ids["eos_token_id"],
            pad_id=ids["pad_token_id"],
        )
    )


_V01_TOP = {"version", "model", "data"}
_V01_MODEL = {"encoder", "decoder", "src_vocab_size", "tgt_vocab_size", "normalization_layer_epsilon"}
_V01_MODEL |= {"rope_min_timescale", "rope_max_timescale"}
_V01_MODEL_IGNORED = {"dropout", "weight_dtype"}
_V01_ENCODER = {"n_layer", "n_embd", "n_hidden", "n_head", "head_dim"}
_V01_DECODER = {"n_layer", "n_embd", "n_hidden", "gqa_query_heads", "kv_heads", "gqa_head_dim"}
_V01_DECODER |= {"cross_query_heads", "cross_head_dim"}
_V01_DATA = {"text_length", "audio_length", "channels", "text_pad_value", "audio_eos_value"}
_V01_DATA |= {"audio_pad_value", "audio_bos_value", "delay_pattern"}


def _parse_v01(config: dict[str, Any]) -> DiaConfig:
    top = take_keys(config, _V01_TOP, {"training"}, "config")
    model = take_keys(top["model"], _V01_MODEL, _V01_MODEL_IGNORED, "model")
    enc = take_keys(model["encoder"], _V01_ENCODER, set(), "model.encoder")
    dec = take_keys(model["decoder"], _V01_DECODER, set(), "model.decoder")
    data = take_keys(top["data"], _V01_DATA, set(), "data")
    require(
        model.get("rope_min_timescale", 1) == 1, "model.rope_min_timescale", model.get("rope_min_timescale")
    )
    require(data.get("text_pad_value", 0) == 0, "data.text_pad_value", data.get("text_pad_value"))
    eps = float(model.get("normalization_layer_epsilon", 1e-5))
    theta = float(model.get("rope_max_timescale", 10000))
    encoder = DiaEncoderConfig(
        vocab_size=model["src_vocab_size"],
        hidden_size=enc["n_embd"],
        num_layers=enc["n_layer"],
        num_heads=enc["n_head"],
        num_kv_heads=enc["n_head"],
        head_dim=enc["head_dim"],
        intermediate_size=enc["n_hidden"],
        max_positions=data["text_length"],
        norm_eps=eps,
        rope_theta=theta,
    )
    decoder = DiaDecoderConfig(
        vocab_size=model["tgt_vocab_size"],
        num_channels=data["channels"],
        hidden_size=dec["n_embd"],
        num_layers=dec["n_layer"],
        num_heads=dec["gqa_query_heads"],
        num_kv_heads=dec["kv_heads"],
        head_dim=dec["gqa_head_dim"],
        cross_hidden_size=enc["n_embd"],
        cross_num_heads=dec["cross_query_heads"],
        cross_num_kv_heads=dec["cross_query_heads"],
        cross_head_dim=dec["cross_head_dim"],
        intermediate_size=dec["n_hidden"],
        max_positions=data["audio_length"],
        norm_eps=eps,
        rope_theta=theta,
    )
    return _checked(
        DiaConfig(
            encoder=encoder,
            decoder=decoder,
            delay_pattern=tuple(data["delay_pattern"]),
            bos_id=data["audio_bos_value"],
            eos_id=data["audio_eos_value"],
            pad_id=data["audio_pad_value"],
            generation=GENERATION_V01,
        )
    )


def _checked(cfg: DiaConfig) -> DiaConfig:
    dec = cfg.decoder
    require(len(cfg.delay_pattern) == dec.num_channels, "delay_pattern", list(cfg.delay_pattern))
    require(
        cfg.delay_pattern[0] == 0 and min(cfg.delay_pattern) >= 0, "delay_pattern", list(cfg.delay_pattern)
    )
    ids = sorted((cfg.eos_id, cfg.pad_id, cfg.bos_id))
    require(cfg.eos_id < cfg.pad_id and ids[-1] < dec.vocab_size, "eos/pad/bos ids", ids)
    require(dec.num_heads % dec.num_kv_heads == 0, "decoder num_key_value_heads", dec.num_kv_heads)
    require(
        dec.cross_num_heads % dec.cross_num_kv_heads == 0, "cross_num_key_value_heads", dec.cross_num_kv_heads
    )
    require(cfg.encoder.num_heads % cfg.encoder.num_kv_heads == 0, "encoder num_key_value_heads", cfg.encoder.num_kv_heads)  # fmt: skip
    require(dec.cross_hidden_size == cfg.encoder.hidden_size, "cross_hidden_size", dec.cross_hidden_size)
    return cfg


# ---- the DAC codec ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DacConfig:
    """The Descript Audio Codec (44.1 kHz, 8 kbps model for Dia): encoder, residual VQ, decoder."""

    encoder_dim: int
    """Width of the first encoder conv (64); doubles at every encoder block."""
    encoder_rates: tuple[int, ...]
    """Encoder strides ([2, 4, 8, 8]: hop 512)."""
    latent_dim: int
    """Quantized latent width (encoder_dim · 2^len(rates) = 1024)."""
    decoder_dim: int
    """Width of the first decoder conv (1536); halves at every decoder block."""
    decoder_rates: tuple[int, ...]
    n_codebooks: int
    codebook_size: int
    codebook_dim: int
    sample_rate: int

    @property
    def hop_length(self) -> int:
        """PCM samples per code frame (512)."""
        return math.prod(self.encoder_rates)


_DESCRIPT_KNOWN = {"encoder_dim", "encoder_rates", "latent_dim", "decoder_dim", "decoder_rates"}
_DESCRIPT_KNOWN |= {"n_codebooks", "codebook_size", "codebook_dim", "sample_rate"}
_HF_DAC_KNOWN = {"encoder_hidden_size", "downsampling_ratios", "hidden_size", "decoder_hidden_size"}
_HF_DAC_KNOWN |= {"upsampling_ratios", "n_codebooks", "codebook_size", "codebook_dim", "sampling_rate"}
_HF_DAC_KNOWN |= {"hop_length", "model_type"}
_DAC_TRAINING = {"quantizer_dropout", "codebook_loss_weight", "commitment_loss_weight", "architectures"}


def parse_descript_kwargs(kwargs: dict[str, Any]) -> DacConfig:
    """``weights.pth``'s ``metadata.kwargs`` (the ``DAC(...)`` constructor arguments)."""
    d = take_keys(kwargs, _DESCRIPT_KNOWN, _DAC_TRAINING, "dac metadata.kwargs")
    rates = tuple(d.get("encoder_rates", (2, 4, 8, 8)))
    enc_dim = d.get("encoder_dim", 64)
    codebook_dim = d.get("codebook_dim", 8)
    require(isinstance(codebook_dim, int), "codebook_dim", codebook_dim)
    return DacConfig(
        encoder_dim=enc_dim,
        encoder_rates=rates,
        latent_dim=d.get("latent_dim") or enc_dim * 2 ** len(rates),
        decoder_dim=d.get("decoder_dim", 1536),
        decoder_rates=tuple(d.get("decoder_rates", (8, 8, 4, 2))),
        n_codebooks=d.get("n_codebooks", 9),
        codebook_size=d.get("codebook_size", 1024),
        codebook_dim=codebook_dim,
        sample_rate=d.get("sample_rate", 44100),
    )


def parse_hf_dac_config(config: dict[str, Any]) -> DacConfig:
    """transformers' ``DacConfig`` (``descript/dac_44khz`` ``config.json``)."""
    d = take_keys(config, _HF_DAC_KNOWN, _DAC_TRAINING | _GENERIC_IGNORED, "dac config")
    require(d.get("model_type", "dac") == "dac", "dac model_type", d.get("model_type"))
    cfg = DacConfig(
        encoder_dim=d["encoder_hidden_size"],
        encoder_rates=tuple(d["downsampling_ratios"]),
        latent_dim=d["hidden_size"],
        decoder_dim=d["decoder_hidden_size"],
        decoder_rates=tuple(d["upsampling_ratios"]),
        n_codebooks=d["n_codebooks"],
        codebook_size=d["codebook_size"],
        codebook_dim=d["codebook_dim"],
        sample_rate=d["sampling_rate"],
    )
    require(d.get("hop_length", cfg.hop_length) == cfg.hop_length, "dac hop_length", d.get("hop_length"))
    return cfg
