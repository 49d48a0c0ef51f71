"""Voxtral Realtime prompts and padding through mistral_common (spec §5.3, §6.4), and incremental text.

The text stream starts with ``<s>`` and ``[STREAMING_PAD]`` × (left-pad tokens + delay tokens); the audio
stream gets the left padding in front and, at its end, ``(delay + 1 + 10)`` tokens of silence so the delayed
text can come out. Both depend on the delay, which mistral_common takes per request
(``target_streaming_delay_ms``); its default is tekken.json's ``transcription_delay_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from mistral_common.exceptions import MistralCommonException
from mistral_common.protocol.transcription.request import StreamingMode, TranscriptionRequest
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from pydantic import ValidationError

from speechserve.errors import CheckpointError, InvalidRequest
from speechserve.models.voxtral_asr.tokenizer import TextDecoder, float_wav


@dataclass(frozen=True)
class StreamPrompt:
    """The text prompt and the silence around the audio for one delay."""

    delay_ms: int
    n_delay: int
    """Delay in decoder positions (80 ms each)."""
    ids: tuple[int, ...]
    """``<s>`` + ``[STREAMING_PAD]`` × (left pad + delay): every prompt position, the last one included."""
    left_pad_samples: int
    """Silence in front of the audio (32 tokens = 2.56 s in the release)."""
    right_pad_samples: int
    """Silence after the audio (delay + 11 tokens), not counting the pad that completes the last token."""


class VoxtralRealtimeTokenizer:
    """Wraps a tekken tokenizer whose audio section is in streaming format. Lifetime: the process."""

    def __init__(self, path: str | Path) -> None:
        try:
            self._tok = MistralTokenizer.from_file(str(path))
        except (OSError, ValueError, MistralCommonException) as exc:
            raise CheckpointError(f"cannot load tokenizer {path}: {exc}") from exc
        instruct = self._tok.instruct_tokenizer
        audio = instruct.audio_encoder
        if audio is None or not audio.audio_config.is_streaming or audio.special_ids.streaming_pad is None:
            raise CheckpointError(
                f"{path} has no streaming audio section with [STREAMING_PAD] (not a Voxtral Realtime tokenizer)"
            )
        self.audio_config = audio.audio_config
        self._tekken = instruct.tokenizer
        self.eos_id: int = self._tekken.eos_id
        self.bos_id: int = self._tekken.bos_id
        self.streaming_pad_id: int = audio.special_ids.streaming_pad
        self.sample_rate: int = self.audio_config.sampling_rate
        self.samples_per_token: int = self.audio_config.raw_audio_length_per_tok
        self.default_delay_ms: int = round(self.audio_config.transcription_delay_ms)
        """tekken.json's ``transcription_delay_ms`` (480 in the release)."""

    def prompt(self, delay_ms: int | None = None) -> StreamPrompt:
        """Prompt ids and paddings of a stream with this delay (None: the default), from mistral_common."""
        return self._prompt(self.default_delay_ms if delay_ms is None else int(delay_ms))

    @lru_cache(maxsize=64)  # noqa: B019 - a handful of delays per process, the tokenizer lives as long
    def _prompt(self, delay_ms: int) -> StreamPrompt:
        request = TranscriptionRequest(
            audio="", streaming=StreamingMode.ONLINE, target_streaming_delay_ms=delay_ms
        )
        try:
            tokenized = self._tok.encode_transcription(request)
        except (MistralCommonException, ValueError, AssertionError) as exc:
            raise InvalidRequest(
                f"cannot build the streaming prompt for {delay_ms} ms: {exc}", "delay"
            ) from exc
        left, right = (len(a.audio_array) for a in tokenized.audios)
        n_delay = len(tokenized.tokens) - 1 - left // self.samples_per_token
        return StreamPrompt(delay_ms, n_delay, tuple(tokenized.tokens), left, right)

    def encode_offline(
        self, samples: np.ndarray, delay_ms: int | None = None
    ) -> tuple[list[int], np.ndarray]:
        """mistral_common's offline request for a whole file: (prompt ids, the audio with its padding)."""
        delay = self.default_delay_ms if delay_ms is None else int(delay_ms)
        request = TranscriptionRequest(
            audio=float_wav(samples, self.sample_rate), streaming=StreamingMode.OFFLINE,
            target_streaming_delay_ms=delay,
        )  # fmt: skip
        try:
            tokenized = self._tok.encode_transcription(request)
        except (MistralCommonException, ValueError, AssertionError) as exc:
            raise InvalidRequest(f"cannot build the offline prompt: {exc}") from exc
        return list(tokenized.tokens), np.asarray(tokenized.audios[0].audio_array, dtype=np.float32)

    def check_language(self, language: str | None) -> None:
        """InvalidRequest (param ``language``) unless mistral_common accepts the ISO-639-1 code. The streaming
        prompt has no language slot: a valid language is accepted and does not change the transcript."""
        try:
            TranscriptionRequest(audio=b"\0", language=language)
        except ValidationError as exc:
            raise InvalidRequest(
                f"invalid language {language!r}: use an ISO-639-1 code such as 'en'", "language"
            ) from exc

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; special ids (``[STREAMING_PAD]``, ``[STREAMING_WORD]``, ``</s>`` …) give none."""
        decoder = self.text_decoder()
        return "".join(decoder.push(i) for i in ids) + decoder.flush()

    def text_decoder(self) -> TextDecoder:
        """A fresh incremental detokenizer."""
        return TextDecoder(self._tekken)
