"""Voxtral Mini 3B / Small 24B (2507): Whisper-style audio encoder, 4-frame adapter, Mistral decoder."""

from speechserve.models.voxtral_asr.model import VoxtralASR

__all__ = ["VoxtralASR"]
