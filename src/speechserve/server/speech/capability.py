"""What ``POST /v1/audio/speech`` needs from a served pipeline: the protocol every family with the ``speech``
capability implements (the server never imports a family; it asks these members).

The three request-facing members turn one HTTP request into the family's terms:

- ``speech_fields``: the model-specific request extensions (``protocol.OPTION_FIELDS``) the family applies;
  the server reports the others as ignored (``X-Ignored-Fields``).
- ``speech_options(fields, base)``: per-segment options from the server's :class:`SynthesisOptions` (seed,
  per-segment frame cap, chunk sizes, and its reading of ``temperature``/``cfg_alpha``/``max_tokens``) and
  the extension fields the request sent; ``fields["ref_audio"]``, when the request clones a voice, is what
  ``clone_voice`` made of the clip. Bad values raise ``InvalidRequest`` naming the field. A family that
  returns :class:`SynthesisOptions` itself counts ``max_tokens`` in output frames of the whole response (the
  server then caps the response too); any other options type is the family's own business.
- ``speech_segments(text, options, max_chars)``: long input cut into the segments the model reads well
  (at most ``max_chars`` characters each, and within whatever hard limit the model's text encoder has).
"""

from __future__ import annotations

from typing import Any, Protocol

from speechserve.options import RefAudio, SynthesisOptions


class SpeechPipeline(Protocol):
    """A loaded speech model as the speech API sees it."""

    sample_rate: int
    """Rate of the generated audio, Hz."""
    samples_per_frame: int
    """Samples per output token (frame); usage and metrics count frames."""
    speech_fields: tuple[str, ...]
    """The model-specific extensions :meth:`speech_options` applies."""

    @property
    def voices(self) -> list[str]:
        """Preset voice names; empty when the model has none (then ``voice`` is ignored)."""
        ...

    @property
    def supports_voice_cloning(self) -> bool: ...

    def clone_voice(self, ref_audio: RefAudio) -> Any:
        """A reference clip encoded once, reused by every segment."""
        ...

    def speech_options(self, fields: dict[str, Any], base: SynthesisOptions) -> Any: ...

    def speech_segments(self, text: str, options: Any, max_chars: int) -> list[str]: ...
