"""Typed errors raised by speechserve.

Every error a caller can provoke is one of these; the server maps them to HTTP statuses in one place.
"""

from __future__ import annotations


class SpeechServeError(Exception):
    """Base class of every speechserve error."""


class InvalidRequest(SpeechServeError, ValueError):
    """The caller asked for something malformed or out of range.

    ``param`` names the offending request field when there is one.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownVoice(InvalidRequest):
    """The requested voice is not one of the model's presets."""

    def __init__(self, voice: str, valid: list[str]) -> None:
        super().__init__(f"Unknown voice {voice!r}; valid voices: {', '.join(sorted(valid))}", param="voice")
        self.voice = voice
        self.valid = sorted(valid)


class InvalidAudio(InvalidRequest):
    """Audio input that cannot be used: empty, corrupt, without an audio stream, or not a format FFmpeg
    reads."""


class UnsupportedAudioFormat(InvalidAudio):
    """Audio in a format the server does not read (an unknown file type or ``input_audio.format``)."""


class AudioTooLong(InvalidRequest):
    """Audio longer than the configured cap (HTTP 400): found from the container's declared duration or
    by decoding no further than the cap."""


class InputTooLarge(InvalidRequest):
    """An upload or fetched file is larger than the configured cap (HTTP 413)."""


class MediaURLRejected(InvalidRequest):
    """An audio URL the server refuses to open: a scheme it does not fetch, a ``file://`` path outside the
    allowed media directory (or no directory allowed at all), or an http(s) host that resolves to a private,
    loopback, link-local, multicast or reserved address."""


class UnsupportedFeature(SpeechServeError):
    """The request is well-formed but this model or checkpoint cannot serve it."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EncoderWeightsMissing(UnsupportedFeature):
    """Voice cloning needs the codec encoder, whose weights this checkpoint does not contain."""

    def __init__(self) -> None:
        super().__init__(
            "Voice cloning from ref_audio needs the codec encoder, but the encoder weights are not in this "
            "checkpoint (the public Voxtral-4B-TTS-2603 release ships only the decoder); use a preset voice.",
            param="ref_audio",
        )


class UnsupportedTask(UnsupportedFeature):
    """The requested model is served but cannot do this task (e.g. transcription on a TTS model)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class CheckpointError(SpeechServeError):
    """A checkpoint is malformed: missing or unexpected tensors, bad shapes, unreadable files."""


class ModelNotFound(SpeechServeError):
    """A model reference could not be resolved to a checkpoint directory."""


class Overloaded(SpeechServeError):
    """The engine's waiting queue is full; retry later (HTTP 429)."""


class EngineDead(SpeechServeError):
    """The engine stopped (shut down or crashed) and cannot take or finish requests (HTTP 503)."""
