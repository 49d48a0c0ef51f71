"""From generated ids to text: one segment's deltas, and segments joined into a :class:`Transcription`.

Shared by the SDK's single-request loop (``pipeline.py``) and the server's engine driver, so both build
exactly the same text, segments and usage from the same ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from speechserve.asr.types import Segment, Transcription, Usage


def joins(before: str, after: str) -> bool:
    """True when two texts can be concatenated without a space (either side already has whitespace)."""
    return not before or not after or before[-1].isspace() or after[0].isspace()


def windows(
    samples: np.ndarray, chunk_samples: int, sample_rate: int, per_chunk: bool
) -> list[tuple[float, float, np.ndarray]]:
    """(start s, end s, samples) of each prompt: one per 30 s chunk, or one for the whole audio."""
    duration = len(samples) / sample_rate
    if not per_chunk:
        return [(0.0, duration, samples)]
    return [
        (k / sample_rate, min(k + chunk_samples, len(samples)) / sample_rate, samples[k : k + chunk_samples])
        for k in range(0, len(samples), chunk_samples)
    ]


class SegmentText:
    """The text of one generated segment, delta by delta. Lifetime: one segment.

    ``before`` is the text of the segments already finished: the first delta gets a leading space when it
    would otherwise run into it. The end-of-sequence id ends the segment without becoming text.
    """

    def __init__(self, tokenizer: Any, before: str = "") -> None:
        self.eos_id = tokenizer.eos_id
        self._decoder = tokenizer.text_decoder()
        self._before = before
        self.pieces: list[str] = []
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.finish_reason = "length"
        """"stop" once the end-of-sequence id came, else "length"."""

    def push(self, token_id: int, logprob: float) -> str:
        """The text this id adds ('' for none: special ids, half a UTF-8 character, end of sequence)."""
        if token_id == self.eos_id:
            self.finish_reason = "stop"
            return ""
        self.ids.append(token_id)
        self.logprobs.append(logprob)
        return self._add(self._decoder.push(token_id))

    def flush(self) -> str:
        """Whatever text the detokenizer still held back (call once, after the last id)."""
        return self._add(self._decoder.flush())

    def _add(self, delta: str) -> str:
        if not delta:
            return ""
        lead = ""
        if not self.pieces and not joins(self._before, delta):
            lead = " "
        self.pieces.append(delta)
        return lead + delta

    @property
    def text(self) -> str:
        """The segment's own text (without the joining space its first delta carried)."""
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        """Generated ids, the end-of-sequence id included."""
        return len(self.ids) + (self.finish_reason == "stop")


class TranscriptBuilder:
    """Segments in order → the final :class:`Transcription`. Lifetime: one transcription."""

    def __init__(self, duration: float, language: str | None) -> None:
        self.duration, self.language = duration, language
        self.text = ""
        self.segments: list[Segment] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(self, start: float, end: float, seg: SegmentText, prompt_tokens: int) -> None:
        text = seg.text
        self.text += "" if joins(self.text, text) else " "
        self.text += text
        avg = float(np.mean(seg.logprobs)) if seg.logprobs else 0.0
        self.segments.append(
            Segment(len(self.segments), start, end, text, list(seg.ids), avg, seg.finish_reason)
        )
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += seg.completion_tokens

    def result(self) -> Transcription:
        usage = Usage(self.duration, self.prompt_tokens, self.completion_tokens)
        return Transcription(self.text, self.segments, self.language, self.duration, usage)
