"""Voxtral ASR's registry entry (Mini 3B / Small 24B, 2507): Mistral-native and Hugging Face layouts."""

from __future__ import annotations

from pathlib import Path

from speechserve.registry import Family, LoadContext

LICENSE = "Apache-2.0"
"""License of the Voxtral Mini 3B / Small 24B (2507) weights."""


def claims(fmt: str, config: dict) -> bool:
    """Mistral params.json with a non-causal Whisper encoder, or transformers' ``voxtral`` config."""
    if fmt == "hf":
        return config.get("model_type") == "voxtral"
    whisper = config.get("multimodal", {}).get("whisper_model_args")
    return whisper is not None and not whisper.get("encoder_args", {}).get("causal", False)


def load(ctx: LoadContext):  # type: ignore[no-untyped-def]
    from speechserve.models.voxtral_asr.config import load_config
    from speechserve.models.voxtral_asr.loader import load_voxtral_asr_weights
    from speechserve.models.voxtral_asr.pipeline import VoxtralASRPipeline
    from speechserve.models.voxtral_asr.tokenizer import VoxtralASRTokenizer

    cfg = load_config(ctx.root, ctx.layout.format)
    tok = VoxtralASRTokenizer(ctx.tokenizer_file("tekken.json"))
    net = load_voxtral_asr_weights(cfg, ctx.layout, ctx.dtype, ctx.device)
    return VoxtralASRPipeline(net, tok, name=ctx.name)


def program(pipeline, config):  # type: ignore[no-untyped-def]
    from speechserve.models.voxtral_asr.program import VoxtralASRProgram

    return VoxtralASRProgram(pipeline, config)


def write_random(directory: str | Path, preset: str = "tiny", seed: int = 0, **kw) -> Path:  # type: ignore[no-untyped-def]
    from speechserve.testing.asr_checkpoint import write_random_asr_checkpoint

    return write_random_asr_checkpoint(directory, preset=preset, seed=seed, **kw)


FAMILY = Family(
    name="voxtral_asr",
    claims=claims,
    load=load,
    capabilities=frozenset({"transcription", "chat"}),
    license=LICENSE,
    program=program,
    write_random=write_random,
    isq_keep=(),
    description="Voxtral Mini 3B / Small 24B (2507): transcription and chat about audio",
)
