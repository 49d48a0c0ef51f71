"""Dia's registry entry: which checkpoints it claims, how they load, what they serve."""

from __future__ import annotations

from pathlib import Path

from speechserve.registry import Family, LoadContext

LICENSE = "Apache-2.0"
"""License of the Dia-1.6B weights (and of the DAC codec, MIT)."""


def claims(fmt: str, config: dict) -> bool:
    """A ``config.json`` of transformers' ``dia`` model type (hub and transformers schemas) or the v0.1
    nari-labs schema (``model`` + ``data`` with a ``delay_pattern``)."""
    if fmt != "hf":
        return False
    if config.get("model_type") == "dia" or "DiaForConditionalGeneration" in (
        config.get("architectures") or ()
    ):
        return True
    model, data = config.get("model"), config.get("data")
    return (
        isinstance(model, dict) and isinstance(data, dict) and "delay_pattern" in data and "decoder" in model
    )


def load(ctx: LoadContext):  # type: ignore[no-untyped-def]
    from speechserve.errors import UnsupportedFeature
    from speechserve.models.dia.config import GENERATION_V01, parse_config
    from speechserve.models.dia.loader import load_dac, load_dia_weights, locate_codec
    from speechserve.models.dia.pipeline import DiaPipeline

    cfg = parse_config(ctx.layout.config)
    if cfg.generation == GENERATION_V01:
        raise UnsupportedFeature(
            f"{ctx.root} is the April-2025 Dia-1.6B (v0.1 config), which computes differently (RoPE in "
            "cross-attention, another sampler); use nari-labs/Dia-1.6B-0626"
        )
    codec = locate_codec(ctx.root, ctx.codec)
    model = load_dia_weights(cfg, ctx.root, ctx.dtype, ctx.device)
    return DiaPipeline(model, load_dac(codec, ctx.device), name=ctx.name)


def program(pipeline, config):  # type: ignore[no-untyped-def]
    from speechserve.models.dia.program import DiaProgram

    return DiaProgram(pipeline, config)


def write_random(directory: str | Path, preset: str = "tiny", seed: int = 0, **kw) -> Path:  # type: ignore[no-untyped-def]
    from speechserve.testing.dia_checkpoint import write_random_dia_checkpoint

    return write_random_dia_checkpoint(directory, preset=preset, seed=seed, **kw)


FAMILY = Family(
    name="dia",
    claims=claims,
    load=load,
    capabilities=frozenset({"speech"}),
    license=LICENSE,
    program=program,
    write_random=write_random,
    isq_keep=("logits_dense", "model.decoder.embeddings", "model.encoder.embedding"),
    description="Dia-1.6B (nari-labs): dialogue text with [S1]/[S2] tags → 44.1 kHz speech (DAC)",
)
