"""The transcription delay of a stream: how far the text runs behind the audio (model card: any multiple of
80 ms from 80 to 1200 ms, or 2400 ms; the release's tekken.json default is 480 ms). A shorter delay gives
text sooner, a longer one more accurate text (2400 ms is on par with offline transcription).

A delay is given in milliseconds or as one of OpenAI's effort-style level names, mapped by :data:`DELAY_LEVELS`.
"""

from __future__ import annotations

from speechserve.errors import InvalidRequest

STEP_MS = 80
"""One decoder position."""
SUPPORTED_DELAYS_MS = (*range(STEP_MS, 1200 + STEP_MS, STEP_MS), 2400)
"""Every delay the model was trained for (model card): 80, 160, …, 1200 and 2400 ms."""

DELAY_LEVELS: dict[str, int] = {
    "minimal": 80,
    "low": 240,
    "medium": 480,
    "high": 960,
    "xhigh": 2400,
}
"""OpenAI-style level names → delay in ms. ``minimal`` is the shortest delay the model supports (one 80 ms
step: fastest text, least accurate); ``low`` 240 ms; ``medium`` 480 ms, the release's default and the model
card's recommended balance; ``high`` 960 ms; ``xhigh`` 2400 ms, the longest, whose accuracy matches offline
transcription."""


def resolve_delay(delay: int | str | None, default_ms: int) -> int:
    """A delay in ms (or a level name, or None for ``default_ms``) → the checked delay in ms.

    ``InvalidRequest`` (param ``delay``) for anything the model does not support.
    """
    if delay is None:
        delay = default_ms
    if isinstance(delay, str):
        name = delay.strip().lower()
        if name in DELAY_LEVELS:
            return DELAY_LEVELS[name]
        try:
            delay = int(name)
        except ValueError:
            raise InvalidRequest(
                f"unknown delay {delay!r}: use milliseconds or one of {', '.join(DELAY_LEVELS)}", "delay"
            ) from None
    if isinstance(delay, bool) or not isinstance(delay, int) or delay not in SUPPORTED_DELAYS_MS:
        raise InvalidRequest(
            f"unsupported delay {delay!r} ms: use a multiple of {STEP_MS} ms from {STEP_MS} to 1200, or 2400 "
            f"(or one of {', '.join(DELAY_LEVELS)})",
            "delay",
        )
    return delay
