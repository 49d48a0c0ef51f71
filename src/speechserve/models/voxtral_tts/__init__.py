"""Voxtral-4B-TTS-2603: Mistral backbone, flow-matching acoustic head, causal Voxtral codec."""

from speechserve.models.voxtral_tts.model import VoxtralTTS

__all__ = ["VoxtralTTS"]
