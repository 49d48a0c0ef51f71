"""A lazy stream of text deltas that also delivers the final result once it is exhausted."""

from __future__ import annotations

from collections.abc import Generator
from typing import Generic, TypeVar

from speechserve.asr.types import TextDelta

R = TypeVar("R")


class TextStream(Generic[R]):
    """Iterate for :class:`TextDelta` pieces as tokens are generated; :meth:`result` gives the final object
    (draining what is left). The final text always equals the joined deltas. ``close()`` cancels."""

    def __init__(self, gen: Generator[TextDelta, None, R], audio_seconds: float) -> None:
        self._gen = gen
        self._done = False
        self._result: R | None = None
        self.audio_seconds = audio_seconds
        """Duration of the input audio, known before any text is generated."""

    def __iter__(self) -> TextStream[R]:
        return self

    def __next__(self) -> TextDelta:
        if self._done:
            raise StopIteration
        try:
            return next(self._gen)
        except StopIteration as stop:
            self._done, self._result = True, stop.value
            raise StopIteration from None

    def result(self) -> R:
        """The finished result; consumes the rest of the stream first."""
        for _ in self:
            pass
        if self._result is None:
            raise RuntimeError("the stream was closed before it finished")
        return self._result

    def close(self) -> None:
        """Stop generating (frees the KV cache); :meth:`result` is then unavailable."""
        self._gen.close()
        self._done = True
