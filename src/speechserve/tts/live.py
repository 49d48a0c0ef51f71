"""Speak text while it is still being written: feed an LLM's pieces of text, iterate audio chunks.

The SDK side of ``WS /v1/audio/speech/stream``: the same :class:`~speechserve.tts.segmentation.LiveSegmenter`
cuts the text, and each sentence is synthesized by the loaded pipeline's own engine as soon as it has ended,
so the first audio is ready long before the last word is written::

    import speechserve
    from speechserve.tts.live import speak_live

    tts = speechserve.load("mistralai/Voxtral-4B-TTS-2603")
    for chunk in speak_live(tts, llm_tokens(), voice="casual_male", granularity="clause"):
        play(chunk.samples, chunk.sample_rate)

Each sentence's audio is exactly what ``pipeline.synthesize(sentence_text, …)`` gives with the same options
(every sentence uses the same seed, as each ``/v1/audio/speech`` request of the server's stream does).
Works for any family with the speech capability (voices for Voxtral TTS, ``[S1]``/``[S2]`` scripts for Dia).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechserve.options import RefAudio
from speechserve.tts.segmentation import Granularity, LiveSegmenter


@dataclass(frozen=True)
class LiveChunk:
    """A piece of one sentence's audio: mono float32 samples at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    sentence_index: int
    """Position of the sentence in the text fed so far (counting from 0)."""
    sentence_text: str
    """The sentence (or clause, or speaker turn) these samples speak."""
    is_last: bool
    """The sentence's last chunk."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


class LiveSpeech:
    """Text in as it is written, each sentence's audio out as soon as the sentence has ended.

    ``feed(text)`` and ``flush()`` cut the text at once and return an iterator that synthesizes the sentences
    they completed, chunk by chunk (iterate it before feeding more: that is when the engine works).
    ``cancel()`` drops the text not yet spoken (a barge-in). Runs on the pipeline's engine in the caller's
    thread; a reference voice is encoded once. Lifetime: one conversation turn or many; not thread-safe.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        voice: str | None = None,
        options: Any = None,
        ref_audio: RefAudio | None = None,
        granularity: Granularity = "sentence",
        max_chars: int = 400,
    ) -> None:
        self.pipeline, self.voice, self.options = pipeline, voice, options
        self.ref_audio = None if ref_audio is None else pipeline.clone_voice(ref_audio)
        self.segmenter = LiveSegmenter(granularity, max_chars)
        self.sentences = 0

    def feed(self, text: str) -> Iterator[LiveChunk]:
        """Add the next piece of text; the audio of the sentences it completed."""
        return self._speak(self.segmenter.feed(text))

    def flush(self) -> Iterator[LiveChunk]:
        """The text is complete: the audio of every sentence left, the last one however it ends."""
        return self._speak(self.segmenter.flush())

    def cancel(self) -> str:
        """Drop the text not yet cut into a sentence; returns it."""
        return self.segmenter.clear()

    def _speak(self, units: list[str]) -> Iterator[LiveChunk]:
        indexed = [(self.sentences + i, text) for i, text in enumerate(units)]
        self.sentences += len(units)
        for index, text in indexed:
            chunks = self.pipeline.synthesize(
                text, options=self.options, voice=self.voice, ref_audio=self.ref_audio
            )
            for chunk in chunks:
                yield LiveChunk(chunk.samples, chunk.sample_rate, index, text, chunk.is_last)


def speak_live(pipeline: Any, pieces: Iterable[str], **kwargs: Any) -> Iterator[LiveChunk]:
    """Audio chunks of ``pieces`` (e.g. an LLM's streamed tokens), each sentence spoken as soon as it has
    ended; ``pieces`` is read lazily, so audio comes out while it is still being written. ``kwargs`` are
    :class:`LiveSpeech`'s."""
    live = LiveSpeech(pipeline, **kwargs)
    for piece in pieces:
        yield from live.feed(piece)
    yield from live.flush()
