"""Voxtral Realtime's registry entry: the checkpoint is recognised (causal Whisper encoder), so loading it
says clearly that it is not served yet instead of mis-loading it as the 2507 models."""

from __future__ import annotations

from speechserve.errors import UnsupportedFeature
from speechserve.registry import Family, LoadContext


def claims(fmt: str, config: dict) -> bool:
    whisper = config.get("multimodal", {}).get("whisper_model_args")
    return fmt == "mistral" and whisper is not None and whisper.get("encoder_args", {}).get("causal", False)


def load(ctx: LoadContext):  # type: ignore[no-untyped-def]
    raise UnsupportedFeature(f"{ctx.name}: voxtral_realtime (mistral layout) is not supported yet")


FAMILY = Family(
    name="voxtral_realtime",
    claims=claims,
    load=load,
    capabilities=frozenset({"transcription", "realtime"}),
    license="Apache-2.0",
    description="Voxtral Mini 4B Realtime (2602): streaming transcription (not served yet)",
)
