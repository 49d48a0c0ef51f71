"""One utterance of a realtime session: the client's PCM16 into the model's live engine stream, its text out.

The engine request comes from the model's own pipeline (``pipeline.realtime_request(delay)``: a feed the
engine thread drains, one id per 80 ms of audio); audio is resampled to the model's rate on the way in with
a streaming resampler whose joined output equals one-shot resampling. Ids become text through the same
:class:`SegmentText` / :class:`TranscriptBuilder` the SDK uses, so the completed transcript is exactly the
joined deltas, and equals the SDK's ``transcribe`` of the same audio.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from speechserve.asr import Transcription
from speechserve.asr.segments import SegmentText, TranscriptBuilder
from speechserve.audio.resample import StreamingResampler
from speechserve.engine import TokenStream
from speechserve.server.realtime.errors import INVALID_AUDIO, RealtimeError
from speechserve.server.state import ServedModel

PCM16_SCALE = 32768.0


def decode_pcm16(data: Any) -> np.ndarray:
    """Base64 little-endian PCM16 mono → float32 in [-1, 1) (``invalid_audio`` RealtimeError otherwise)."""
    if not isinstance(data, str):
        raise RealtimeError(INVALID_AUDIO, "audio must be a base64 string of PCM16 samples", "audio")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RealtimeError(INVALID_AUDIO, "audio is not valid base64", "audio") from None
    if len(raw) % 2:
        raise RealtimeError(
            INVALID_AUDIO,
            f"PCM16 audio has 2 bytes per sample; got {len(raw)} bytes (an odd number)",
            "audio",
        )
    return np.frombuffer(raw, "<i2").astype(np.float32) / PCM16_SCALE


class Item:
    """One utterance: built when its first audio (or vLLM's starting commit) arrives, started on the engine,
    closed by a commit, finished when the engine has heard all of it. Lifetime: one utterance."""

    def __init__(self, item_id: str, model: ServedModel, delay: str | int | None, rate: int, language: str | None) -> None:  # fmt: skip
        pipeline = model.pipeline
        self.id, self.model, self.language = item_id, model, language
        self.request = pipeline.realtime_request(delay)
        self.sample_rate: int = pipeline.sample_rate
        self.resampler = StreamingResampler(rate, self.sample_rate)
        tokenizer = pipeline.tokenizer
        self.token_seconds = getattr(tokenizer, "samples_per_token", 1280) / self.sample_rate
        self.text = SegmentText(tokenizer)
        self.stream: TokenStream | None = None
        self.samples = 0
        """Samples (at the model's rate) pushed to the engine."""
        self.closed = False
        """No more audio: committed, ended by the model, or cancelled."""
        self.finished = False
        """The engine is done with it."""

    @property
    def started(self) -> bool:
        return self.stream is not None

    def start(self) -> None:
        """Submit the live stream to the model's engine (Overloaded, EngineDead … raise here)."""
        self.stream = self.model.engine.submit(self.request)

    def push(self, pcm: np.ndarray) -> None:
        """Add float32 samples at the session's rate."""
        self._feed(self.resampler.push(pcm))

    def close(self) -> None:
        """End of audio: the resampler's tail, then the feed closes (the model pads and finishes)."""
        if not self.closed:
            self.closed = True
            self._feed(self.resampler.flush())
            self.request.feed.close()

    def cancel(self) -> None:
        """Stop now: the engine drops the stream at its next step and frees the slot."""
        self.closed = True
        if self.stream is not None:
            self.stream.cancel()
        if not self.request.feed.closed:
            self.request.feed.close()  # wakes an engine waiting for audio

    def _feed(self, samples: np.ndarray) -> None:
        if samples.size:
            self.request.feed.push(samples)
            self.samples += samples.size

    # ---- accounting ------------------------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    @property
    def buffered_seconds(self) -> float:
        """Audio pushed that the model has not heard yet: its first id needs the delay's worth of audio, then
        one id per token of audio."""
        if self.finished:
            return 0.0
        n = self.stream.usage.completion_tokens if self.stream is not None else 0
        delay = (self.request.delay_ms or 0) / 1000
        heard = delay + n * self.token_seconds if n else 0.0
        return max(0.0, self.seconds - heard)

    @property
    def completion_tokens(self) -> int:
        return self.stream.usage.completion_tokens if self.stream is not None else 0

    # ---- text ------------------------------------------------------------------------------------------------
    async def deltas(self) -> AsyncIterator[str]:
        """Text as the engine generates it; ends when the engine finished the stream (or raises its error)."""
        assert self.stream is not None
        try:
            async for token in self.stream:
                if delta := self.text.push(token.id, token.logprob):
                    yield delta
        except Exception:
            self.finished = True
            raise
        self.finished = True
        if tail := self.text.flush():
            yield tail

    @property
    def cancelled(self) -> bool:
        return self.stream is not None and self.stream.finish_reason == "cancelled"

    def result(self) -> Transcription:
        """The transcript (the joined deltas) and usage, once :meth:`deltas` has ended."""
        builder = TranscriptBuilder(self.seconds, self.language)
        prompt = self.stream.usage.prompt_tokens if self.stream is not None else 0
        builder.add(0.0, self.seconds, self.text, prompt)
        return builder.result()
