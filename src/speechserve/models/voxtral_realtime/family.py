"""Voxtral Realtime's registry entry: Mistral params.json with a causal Whisper encoder, or transformers'
``voxtral_realtime`` config.json."""

from __future__ import annotations

from pathlib import Path

from speechserve.errors import UnsupportedFeature
from speechserve.registry import Family, LoadContext

LICENSE = "Apache-2.0"
"""License of the Voxtral Mini 4B Realtime (2602) weights."""


def claims(fmt: str, config: dict) -> bool:
    """A causal Whisper encoder in params.json, or transformers' ``voxtral_realtime`` model type."""
    if fmt == "hf":
        return config.get("model_type") == "voxtral_realtime"
    whisper = config.get("multimodal", {}).get("whisper_model_args")
    return whisper is not None and bool(whisper.get("encoder_args", {}).get("causal", False))


def load(ctx: LoadContext):  # type: ignore[no-untyped-def]
    from speechserve.models.voxtral_realtime.config import load_config
    from speechserve.models.voxtral_realtime.loader import load_voxtral_realtime_weights
    from speechserve.models.voxtral_realtime.pipeline import VoxtralRealtimePipeline
    from speechserve.models.voxtral_realtime.tokenizer import VoxtralRealtimeTokenizer

    try:
        cfg = load_config(ctx.root, ctx.layout.format)
    except ValueError as exc:
        raise UnsupportedFeature(
            f"{ctx.name}: this voxtral_realtime checkpoint ({ctx.layout.format} layout) uses something "
            f"speechserve cannot run: {exc}"
        ) from exc
    tok = VoxtralRealtimeTokenizer(ctx.tokenizer_file("tekken.json"))
    net = load_voxtral_realtime_weights(cfg, ctx.layout, ctx.dtype, ctx.device)
    return VoxtralRealtimePipeline(net, tok, name=ctx.name)


def program(pipeline, config):  # type: ignore[no-untyped-def]
    from speechserve.models.voxtral_realtime.program import VoxtralRealtimeProgram

    return VoxtralRealtimeProgram(pipeline, config)


def write_random(directory: str | Path, preset: str = "tiny", seed: int = 0, **kw) -> Path:  # type: ignore[no-untyped-def]
    from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint

    return write_random_realtime_checkpoint(directory, preset=preset, seed=seed, **kw)


FAMILY = Family(
    name="voxtral_realtime",
    claims=claims,
    load=load,
    capabilities=frozenset({"transcription", "chat", "realtime"}),
    license=LICENSE,
    program=program,
    write_random=write_random,
    description=(
        "Voxtral Mini 4B Realtime (2602): streaming transcription with a per-session delay; a chat with audio "
        "is answered with the audio's transcript (the model follows no instructions)"
    ),
)
