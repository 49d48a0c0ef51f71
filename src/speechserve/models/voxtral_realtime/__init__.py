"""Voxtral Mini 4B Realtime (2602): streaming transcription with a per-stream delay.

Files: ``config`` (params.json / config.json), ``loader`` (both layouts), ``tokenizer`` (prompts and padding
via mistral_common), ``delay`` (supported delays and level names), ``frontend`` (streaming log-mel),
``encoder`` / ``decoder`` / ``model`` (architecture), ``window`` / ``cache`` (ring KV caches), ``stream`` /
``runner`` / ``session`` (the 80 ms step), ``pipeline`` (SDK), ``request`` / ``program`` (engine).
"""

from speechserve.models.voxtral_realtime.model import VoxtralRealtime

__all__ = ["VoxtralRealtime"]
