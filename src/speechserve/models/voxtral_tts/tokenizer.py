"""Speech prompts through mistral_common: `[BOS, BEGIN_AUDIO, AUDIO×N, NEXT_AUDIO_TEXT, text…,
REPEAT_AUDIO_TEXT, BEGIN_AUDIO]` (spec §4)."""

from __future__ import annotations

from pathlib import Path

from mistral_common.exceptions import MistralCommonException
from mistral_common.protocol.speech.request import SpeechRequest
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from speechserve.errors import CheckpointError, InvalidRequest, UnknownVoice


class VoxtralTTSTokenizer:
    """Wraps a tekken tokenizer; knows each preset's placeholder count."""

    def __init__(self, path: str | Path) -> None:
        try:
            self._tok = MistralTokenizer.from_file(str(path))
        except (OSError, ValueError, MistralCommonException) as exc:
            raise CheckpointError(f"cannot load tokenizer {path}: {exc}") from exc
        audio = self._tok.instruct_tokenizer.audio_encoder
        if audio is None or not audio.audio_config.voice_num_audio_tokens:
            raise CheckpointError(
                f"{path} has no audio block with voice_num_audio_tokens (needs a TTS tekken.json)"
            )
        self.voice_num_audio_tokens: dict[str, int] = dict(audio.audio_config.voice_num_audio_tokens)

    def encode_voice(self, text: str, voice: str) -> list[int]:
        """Prompt ids for a preset voice."""
        if voice not in self.voice_num_audio_tokens:
            raise UnknownVoice(voice, list(self.voice_num_audio_tokens))
        return self._encode(SpeechRequest(input=text, voice=voice))

    def encode_reference(self, text: str, wav_bytes: bytes) -> list[int]:
        """Prompt ids for a reference recording (placeholders = ceil(seconds·12.5) + 1)."""
        return self._encode(SpeechRequest(input=text, ref_audio=wav_bytes))

    def _encode(self, request: SpeechRequest) -> list[int]:
        if not request.input.strip():
            raise InvalidRequest("input text must not be empty", param="input")
        try:
            return list(self._tok.instruct_tokenizer.encode_speech_request(request).tokens)
        except MistralCommonException as exc:
            raise InvalidRequest(f"cannot encode the speech request: {exc}") from exc
