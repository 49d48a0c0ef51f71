"""Voxtral Mini 4B Realtime (2602): causal streaming transcription. Recognised, not served yet."""
