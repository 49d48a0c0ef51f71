"""The speech-to-text API family: ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``."""
