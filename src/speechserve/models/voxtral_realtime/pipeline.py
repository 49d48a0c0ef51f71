"""A loaded Voxtral Mini 4B Realtime model: streaming transcription with a per-stream delay.

- ``transcribe(audio, options)`` / ``transcribe_stream``: a whole file, the same types as the 2507 models
  (the file is decoded as one stream: one id per 80 ms of audio, text ``delay`` behind);
- ``stream(delay=...)``: a live transcriber you ``push`` PCM into and read text deltas from (on the caller's
  thread); ``realtime_request(delay=...)``: the same stream for the engine, which batches many;
- ``transcription_prompts`` / ``load_audio`` / ``tokenizer``: what the server's transcription route uses;
  ``chat_prompt``: what its chat route uses (the model transcribes the chat's audio; it follows no
  instructions, so text parts are ignored).
"""

from __future__ import annotations

import queue
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np
import torch

from speechserve.asr.audio_input import AudioInput, check_duration, load_audio, load_base64_audio
from speechserve.asr.chat import normalize_messages
from speechserve.asr.segments import SegmentText, TranscriptBuilder
from speechserve.asr.stream import TextStream
from speechserve.asr.types import TextDelta, Transcription, TranscriptionOptions
from speechserve.audio.resample import StreamingResampler
from speechserve.errors import CheckpointError, InvalidRequest
from speechserve.models.sampling import Sampler
from speechserve.models.voxtral_realtime.delay import resolve_delay
from speechserve.models.voxtral_realtime.model import VoxtralRealtime
from speechserve.models.voxtral_realtime.request import AudioFeed, FilePrompt, RealtimeRequest
from speechserve.models.voxtral_realtime.session import StreamSession
from speechserve.models.voxtral_realtime.tokenizer import StreamPrompt, VoxtralRealtimeTokenizer

DEFAULT_MAX_AUDIO_SECONDS = 3 * 3600.0
"""Longest accepted file: about the decoder's 131 072 positions at 80 ms each."""
Delay = int | str | None
"""Milliseconds (80 … 1200 in 80 ms steps, or 2400), a level name (``delay.DELAY_LEVELS``), or None for the
pipeline's ``delay_ms``."""


class VoxtralRealtimePipeline:
    """Owns the model and its tokenizer; turns audio into text as it arrives. Lifetime: the process.

    Each call decodes on the caller's thread with its own stream state (batching across streams is the
    engine's job).
    """

    supports_transcription = True
    supports_chat = False
    supports_speech = False
    supports_translation = False

    def __init__(
        self,
        model: VoxtralRealtime,
        tokenizer: VoxtralRealtimeTokenizer,
        name: str = "",
        max_audio_seconds: float | None = DEFAULT_MAX_AUDIO_SECONDS,
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.max_audio_seconds = max_audio_seconds
        """Longest accepted file for ``transcribe``; None: no cap (live streams have none)."""
        cfg = model.cfg
        if tokenizer.sample_rate != cfg.encoder.audio.sampling_rate or tokenizer.samples_per_token != cfg.samples_per_token:  # fmt: skip
            raise CheckpointError(
                f"tokenizer audio ({tokenizer.sample_rate} Hz, {tokenizer.samples_per_token} samples per token) "
                f"does not match the model ({cfg.encoder.audio.sampling_rate} Hz, {cfg.samples_per_token})"
            )
        self.delay_ms: int = resolve_delay(None, tokenizer.default_delay_ms)
        """The delay of streams that ask for none (tekken.json's ``transcription_delay_ms``; settable)."""

    @property
    def sample_rate(self) -> int:
        """Rate the model hears (16 kHz); inputs are resampled to it."""
        return self.tokenizer.sample_rate

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---- building blocks ---------------------------------------------------------------------------------
    def load_audio(self, audio: AudioInput, param: str = "file") -> np.ndarray:
        """Any supported audio input → 16 kHz mono float32, within ``max_audio_seconds``."""
        return load_audio(audio, self.sample_rate, self.max_audio_seconds, param)

    def stream_prompt(self, delay: Delay = None) -> StreamPrompt:
        """Prompt ids and paddings of a stream with this delay (checked: ``InvalidRequest`` if unsupported)."""
        return self.tokenizer.prompt(resolve_delay(delay, self.delay_ms))

    def session(self, delay: Delay = None, sampler: Sampler | None = None, max_tokens: int | None = None) -> StreamSession:  # fmt: skip
        """A bare stream: push samples, take ids (see :class:`StreamSession`)."""
        prompt = self.stream_prompt(delay)
        cap = None if max_tokens is None else len(prompt.ids) - 1 + max_tokens
        return StreamSession(self.model, prompt, sampler, frozenset({self.tokenizer.eos_id}), cap)

    def max_new_tokens(self, n_samples: int, delay: Delay = None) -> int:
        """Ids a file of ``n_samples`` gives at most: one per 80 ms position after the prompt."""
        prompt = self.stream_prompt(delay)
        per = self.model.cfg.samples_per_token
        padded = prompt.left_pad_samples + -(-n_samples // per) * per + prompt.right_pad_samples
        return max(1, padded // per - len(prompt.ids))

    def transcription_prompts(
        self, samples: np.ndarray, opts: TranscriptionOptions
    ) -> list[tuple[FilePrompt, float, float, int]]:
        """One (prompt, start s, end s, token cap) for the whole audio: the realtime model has no 30 s chunks."""
        prompt = self.stream_prompt(None)
        file = FilePrompt(list(prompt.ids), np.asarray(samples, dtype=np.float32), prompt.delay_ms)
        cap = opts.max_tokens or self.max_new_tokens(len(samples))
        return [(file, 0.0, len(samples) / self.sample_rate, cap)]

    def chat_prompt(self, messages: list[dict[str, Any]]) -> tuple[FilePrompt, float]:
        """A chat with audio → one stream over its audio parts, in order (joined), and their seconds.

        Voxtral Realtime only transcribes: the answer is the transcript, whatever the text parts ask (they
        are ignored). ``InvalidRequest`` (param ``messages``) when the chat carries no audio."""
        _, audios = normalize_messages(messages, self._load_part)
        if not audios:
            raise InvalidRequest(
                "Voxtral Realtime answers a chat with the transcript of its audio and follows no instructions: "
                "send at least one input_audio or audio_url part",
                "messages",
            )
        samples = np.concatenate(audios).astype(np.float32, copy=False)
        seconds = len(samples) / self.sample_rate
        check_duration(seconds, self.max_audio_seconds, "messages")
        prompt = self.stream_prompt(None)
        return FilePrompt(list(prompt.ids), samples, prompt.delay_ms), seconds

    def _load_part(self, payload: Any, kind: str) -> np.ndarray:
        if kind == "base64":
            return load_base64_audio(payload, self.sample_rate, self.max_audio_seconds, "messages")
        return self.load_audio(payload, "messages")

    def warmup_request(self):  # type: ignore[no-untyped-def]
        """A two-token transcription of 0.1 s of silence (the server sends it before serving)."""
        from speechserve.engine import ASRRequest

        silence = np.zeros(self.sample_rate // 10, np.float32)
        prompt = self.stream_prompt(None)
        return ASRRequest(FilePrompt(list(prompt.ids), silence, prompt.delay_ms), max_tokens=2)

    # ---- whole files -------------------------------------------------------------------------------------
    def transcribe_stream(
        self, audio: AudioInput, options: TranscriptionOptions | None = None, *, delay: Delay = None
    ) -> TextStream[Transcription]:
        """Decode and check the audio now, then stream text deltas as ids are generated. ``options.language``
        is checked and reported but does not steer the model (its streaming prompt has no language), and
        ``segment_chunks`` has no effect (no 30 s chunks: the whole file is one stream and one segment)."""
        opts = options or TranscriptionOptions()
        self.tokenizer.check_language(opts.language)
        samples = self.load_audio(audio)
        session = self.session(delay, Sampler(opts.temperature, opts.top_p, opts.seed), opts.max_tokens)
        return TextStream(self._transcribe(session, samples, opts), len(samples) / self.sample_rate)

    def transcribe(
        self, audio: AudioInput, options: TranscriptionOptions | None = None, *, delay: Delay = None
    ) -> Transcription:
        """Transcribe a whole audio (the joined :meth:`transcribe_stream`)."""
        return self.transcribe_stream(audio, options, delay=delay).result()

    def _transcribe(
        self, session: StreamSession, samples: np.ndarray, opts: TranscriptionOptions
    ) -> Generator[TextDelta, None, Transcription]:
        seconds = len(samples) / self.sample_rate
        seg = SegmentText(self.tokenizer)
        session.push(samples)
        session.end()
        for step in session.steps():
            if delta := seg.push(step.id, step.logprob):
                yield TextDelta(delta)
        if tail := seg.flush():
            yield TextDelta(tail)
        out = TranscriptBuilder(seconds, opts.language)
        out.add(0.0, seconds, seg, len(session.state.prompt.ids))
        return out.result()

    # ---- live streams ------------------------------------------------------------------------------------
    def realtime_request(
        self, delay: Delay = None, options: TranscriptionOptions | None = None
    ) -> RealtimeRequest:
        """A live stream for the engine (``engine.submit(request)`` → ids): push 16 kHz mono float32 pieces
        into ``request.feed`` from any thread, ``close()`` it at the end. Checks the delay now."""
        opts = options or TranscriptionOptions()
        delay_ms = self.stream_prompt(delay).delay_ms
        return RealtimeRequest(
            AudioFeed(), delay_ms, opts.max_tokens, opts.temperature, opts.top_p, opts.seed
        )

    def stream(
        self,
        delay: Delay = None,
        options: TranscriptionOptions | None = None,
        sample_rate: int | None = None,
    ) -> StreamingTranscriber:
        """A live transcriber: ``push`` audio (at ``sample_rate``, default 16 kHz) as it arrives, ``finish``
        at the end; text comes back from ``push``/``finish`` and by iterating (see :class:`StreamingTranscriber`)."""
        opts = options or TranscriptionOptions()
        self.tokenizer.check_language(opts.language)
        session = self.session(delay, Sampler(opts.temperature, opts.top_p, opts.seed), opts.max_tokens)
        return StreamingTranscriber(self, session, opts.language, sample_rate or self.sample_rate)

    def bench_realtime_point(self, concurrency: int, seconds: float, max_lag_ms: float):  # type: ignore[no-untyped-def]
        """`bench realtime`'s sweep point: sessions fed at real-time pace on one engine (see ``bench.py``)."""
        from speechserve.models.voxtral_realtime.bench import realtime_point

        return realtime_point(self, concurrency, seconds, max_lag_ms)

    def bench_long_session(self, minutes: float, tolerance: float):  # type: ignore[no-untyped-def]
        """`bench realtime`'s step time at minute 1 vs after ``minutes`` of audio (see ``bench.py``)."""
        from speechserve.models.voxtral_realtime.bench import long_session

        return long_session(self, minutes, tolerance)


_END = object()


def _float_pcm(samples: np.ndarray) -> np.ndarray:
    """Mono samples as float32 in [-1, 1): integer PCM is scaled by its full range (int16 / 32768)."""
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        half = (int(info.max) - int(info.min) + 1) / 2
        x = (x.astype(np.float64) - (int(info.min) + half)) / half
    x = x.astype(np.float32).reshape(-1)
    if not np.isfinite(x).all():
        raise InvalidRequest("audio samples contain NaN or infinity", "audio")
    return x


class StreamingTranscriber:
    """Push PCM in, get text out, one id per 80 ms of audio. Lifetime: one stream (``finish`` ends it).

    ``push(samples)`` decodes every step the audio received so far allows and returns the new
    :class:`TextDelta` pieces; ``finish()`` closes the stream with silence, decodes the rest and returns the
    last pieces. The same pieces also queue up for iteration: ``for delta in transcriber`` blocks until the
    next piece or the end, so another thread can read while this one pushes. ``result()`` gives the
    :class:`Transcription` after ``finish``. Memory stays bounded however long the stream runs.
    """

    def __init__(self, pipeline: VoxtralRealtimePipeline, session: StreamSession, language: str | None, sample_rate: int) -> None:  # fmt: skip
        self._pipeline, self.session, self._language = pipeline, session, language
        self._resampler = StreamingResampler(sample_rate, pipeline.sample_rate)
        self._seg = SegmentText(pipeline.tokenizer)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._n_samples = 0
        self._result: Transcription | None = None

    @property
    def text(self) -> str:
        """The text so far."""
        return self._seg.text

    @property
    def finished(self) -> bool:
        return self._result is not None

    def push(self, samples: np.ndarray) -> list[TextDelta]:
        """Add mono audio (float in [-1, 1], or integer PCM); return the text it completed."""
        if self.finished:
            raise InvalidRequest("audio pushed after finish()", "audio")
        pcm = self._resampler.push(_float_pcm(samples))
        self._n_samples += len(pcm)
        self.session.push(pcm)
        return self._decode()

    def finish(self) -> list[TextDelta]:
        """End of audio: decode to the end and return the last text."""
        if self.finished:
            return []
        tail = self._resampler.flush()
        self._n_samples += len(tail)
        self.session.push(tail)
        self.session.end()
        out = self._decode()
        if rest := self._seg.flush():
            out.append(self._put(TextDelta(rest)))
        seconds = self._n_samples / self._pipeline.sample_rate
        builder = TranscriptBuilder(seconds, self._language)
        builder.add(0.0, seconds, self._seg, len(self.session.state.prompt.ids))
        self._result = builder.result()
        self._queue.put(_END)
        return out

    def result(self) -> Transcription:
        if self._result is None:
            raise RuntimeError("the stream is still open: call finish() first")
        return self._result

    def __iter__(self) -> Iterator[TextDelta]:
        while (item := self._queue.get()) is not _END:
            yield item  # type: ignore[misc]

    def _decode(self) -> list[TextDelta]:
        out = []
        for step in self.session.steps():
            if delta := self._seg.push(step.id, step.logprob):
                out.append(self._put(TextDelta(delta)))
        return out

    def _put(self, delta: TextDelta) -> TextDelta:
        self._queue.put(delta)
        return delta
