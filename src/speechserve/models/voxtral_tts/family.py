"""Voxtral TTS's registry entry: which checkpoints it claims, how they load, what they serve."""

from __future__ import annotations

from pathlib import Path

from speechserve.registry import Family, LoadContext

LICENSE = "CC-BY-NC-4.0"
"""License of the Voxtral TTS weights and of its preset voices (non-commercial)."""


def claims(fmt: str, config: dict) -> bool:
    """Mistral-native params.json with the audio tokenizer (codec) section."""
    mm = config.get("multimodal", {})
    return fmt == "mistral" and (config.get("model_type") == "voxtral_tts" or "audio_tokenizer_args" in mm)


def load(ctx: LoadContext):  # type: ignore[no-untyped-def]
    from speechserve.models.voxtral_tts.config import parse_params
    from speechserve.models.voxtral_tts.loader import load_voxtral_tts_weights
    from speechserve.models.voxtral_tts.pipeline import VoxtralTTSPipeline
    from speechserve.models.voxtral_tts.tokenizer import VoxtralTTSTokenizer
    from speechserve.models.voxtral_tts.voices import load_voices

    cfg = parse_params(ctx.layout.config)
    tok = VoxtralTTSTokenizer(ctx.tokenizer_file("tekken.json"))
    net = load_voxtral_tts_weights(cfg, ctx.layout.weights[0], ctx.dtype, ctx.device)
    voices = load_voices(ctx.root, list(cfg.voices), cfg.backbone.dim, tok.voice_num_audio_tokens, ctx.dtype, ctx.device)  # fmt: skip
    return VoxtralTTSPipeline(net, tok, voices, name=ctx.name)


def program(pipeline, config):  # type: ignore[no-untyped-def]
    from speechserve.models.voxtral_tts.program import VoxtralTTSProgram

    return VoxtralTTSProgram(pipeline, config)


def write_random(directory: str | Path, preset: str = "tiny", seed: int = 0, **kw) -> Path:  # type: ignore[no-untyped-def]
    from speechserve.testing.checkpoint import write_random_checkpoint

    return write_random_checkpoint(directory, preset=preset, seed=seed, **kw)


FAMILY = Family(
    name="voxtral_tts",
    claims=claims,
    load=load,
    capabilities=frozenset({"speech"}),
    license=LICENSE,
    program=program,
    write_random=write_random,
    # The semantic head picks each frame's semantic code by argmax: kept fp32 (0.1 GB), int8 weight-only
    # keeps 199 of 200 teacher-forced codes equal to fp32's at the real widths, 196 when it is quantized too
    # (bench/RESULTS.md). The codec and the audio embeddings are cheap next to the backbone and sensitive.
    isq_keep=("audio_tokenizer", "audio_embeddings", "acoustic_transformer.semantic_codebook_output"),
    # The flow head's products have 6 rows (3 tokens × 2 CFG branches): fbgemm's dynamic int8 does them
    # 2.3× faster than the weight-only kernel (flow 232 vs 544 ms per frame at the real widths), and the
    # semantic codes do not depend on them (the agreement above is teacher-forced on the same codes).
    isq_dynamic=("acoustic_transformer",),
    description="Voxtral-4B-TTS-2603: text + preset voice → 24 kHz speech",
)
