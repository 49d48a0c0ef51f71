"""Voxtral ASR prompts through mistral_common (spec §6.2-6.3) and incremental detokenization.

Transcription: `TranscriptionRequest` → `<s>[INST][BEGIN_AUDIO][AUDIO]×N[/INST]lang:xx[TRANSCRIBE]`.
Chat: OpenAI-style messages with audio chunks → `<s>[INST][BEGIN_AUDIO][AUDIO]×N text[/INST]…`.
Audio reaches mistral_common as lossless float32 WAV bytes of the already decoded 16 kHz mono samples;
mistral_common pads every audio to whole 30 s chunks and hands the padded samples back with the ids.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from mistral_common.exceptions import MistralCommonException
from mistral_common.protocol.instruct.chunk import AudioChunk, TextChunk
from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.transcription.request import TranscriptionRequest
from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from pydantic import ValidationError

from speechserve.asr.types import AudioPrompt
from speechserve.errors import CheckpointError, InvalidRequest


def float_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Lossless float32 WAV bytes (what mistral_common reads back bit-exactly)."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), sample_rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


class VoxtralASRTokenizer:
    """Wraps a tekken tokenizer with an instruct-format audio section. Lifetime: the process."""

    def __init__(self, path: str | Path) -> None:
        try:
            self._tok = MistralTokenizer.from_file(str(path))
        except (OSError, ValueError, MistralCommonException) as exc:
            raise CheckpointError(f"cannot load tokenizer {path}: {exc}") from exc
        instruct = self._tok.instruct_tokenizer
        audio = instruct.audio_encoder
        if audio is None or audio.special_ids.audio is None or getattr(instruct, "TRANSCRIBE", None) is None:
            raise CheckpointError(
                f"{path} has no audio section with [AUDIO] and [TRANSCRIBE] (not a Voxtral ASR tokenizer)"
            )
        self.audio_config = audio.audio_config
        if self.audio_config.is_streaming or not self.audio_config.chunk_length_s:
            raise CheckpointError(
                f"{path} describes streaming transcription (Voxtral Realtime), not the 2507 models"
            )
        self._tekken = instruct.tokenizer
        self.audio_token_id: int = audio.special_ids.audio
        self.eos_id: int = self._tekken.eos_id
        self.sample_rate: int = self.audio_config.sampling_rate
        self.chunk_samples: int = round(self.audio_config.chunk_length_s * self.sample_rate)

    def encode_transcription(self, samples: np.ndarray, language: str | None = None) -> AudioPrompt:
        """Transcription prompt for 16 kHz mono ``samples`` (auto language detection when None)."""
        request = self._transcription_request(float_wav(samples, self.sample_rate), language)
        return self._tokenized(lambda: self._tok.encode_transcription(request))

    def check_language(self, language: str | None) -> None:
        """InvalidRequest (param ``language``) unless mistral_common accepts the ISO-639-1 code."""
        self._transcription_request(b"\0", language)

    @staticmethod
    def _transcription_request(audio: bytes, language: str | None) -> TranscriptionRequest:
        try:
            return TranscriptionRequest(audio=audio, language=language)
        except ValidationError as exc:
            raise InvalidRequest(
                f"invalid language {language!r}: use an ISO-639-1 code such as 'en'", "language"
            ) from exc

    def encode_chat(self, messages: list[dict[str, Any]]) -> AudioPrompt:
        """Chat prompt for messages whose content parts are ``{"type": "text"}`` or ``{"type": "audio",
        "samples": 16 kHz mono ndarray}`` (see :mod:`speechserve.asr.chat` for the public forms)."""
        converted = [_message(m, self.sample_rate) for m in messages]
        try:
            request = ChatCompletionRequest(messages=converted)
        except ValidationError as exc:
            raise InvalidRequest(f"invalid chat messages: {exc.errors()[0]['msg']}", "messages") from exc
        return self._tokenized(lambda: self._tok.encode_chat_completion(request))

    def _tokenized(self, encode) -> AudioPrompt:
        try:
            tokenized = encode()
        except (MistralCommonException, ValueError, AssertionError) as exc:
            raise InvalidRequest(f"cannot build the prompt: {exc}") from exc
        audios = [np.asarray(a.audio_array, dtype=np.float32) for a in tokenized.audios]
        return AudioPrompt(list(tokenized.tokens), audios)

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` with special tokens dropped (same bytes → text rule as :class:`TextDecoder`)."""
        decoder = self.text_decoder()
        return "".join(decoder.push(i) for i in ids) + decoder.flush()

    def text_decoder(self) -> TextDecoder:
        """A fresh incremental detokenizer."""
        return TextDecoder(self._tekken)


class TextDecoder:
    """Turns generated ids into text deltas; holds back bytes of a UTF-8 character split across tokens."""

    def __init__(self, tekken) -> None:
        self._tekken = tekken
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """The new text this token completes ('' for special tokens or an unfinished character)."""
        return self._utf8.decode(self._tekken.id_to_byte_piece(token_id, SpecialTokenPolicy.IGNORE))

    def flush(self) -> str:
        """Whatever is still held back (a dangling partial character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)


def _message(message: dict[str, Any], sample_rate: int):
    role, content = message.get("role"), message.get("content")
    if role == "system":
        return SystemMessage(content=content)
    if role == "assistant":
        return AssistantMessage(content=content)
    if role != "user":
        raise InvalidRequest(f"unsupported message role {role!r} (use system, user or assistant)", "messages")
    if isinstance(content, str):
        return UserMessage(content=content)
    chunks: list[AudioChunk | TextChunk] = []
    for part in content:
        if part["type"] == "text":
            chunks.append(TextChunk(text=part["text"]))
        else:
            chunks.append(AudioChunk(input_audio=float_wav(part["samples"], sample_rate)))
    return UserMessage(content=chunks)
