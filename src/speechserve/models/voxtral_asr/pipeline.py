"""A loaded Voxtral ASR model (Mini 3B / Small 24B, 2507): transcription and audio chat, streamed or whole."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch

from speechserve.asr.audio_input import AudioInput, check_duration, load_audio, load_base64_audio
from speechserve.asr.chat import normalize_messages
from speechserve.asr.segments import SegmentText, TranscriptBuilder, windows
from speechserve.asr.stream import TextStream
from speechserve.asr.types import (
    DEFAULT_CHAT_MAX_TOKENS,
    DEFAULT_MAX_TOKENS_PER_CHUNK,
    ChatOptions,
    ChatResult,
    TextDelta,
    Transcription,
    TranscriptionOptions,
    Usage,
)
from speechserve.audio.decode import audio_too_long
from speechserve.audio.mel import chunked_log_mel
from speechserve.errors import AudioTooLong, CheckpointError, InvalidRequest
from speechserve.models.voxtral_asr import VoxtralASR
from speechserve.models.voxtral_asr.generation import Sampler, generate_tokens
from speechserve.models.voxtral_asr.tokenizer import AudioPrompt, VoxtralASRTokenizer

DEFAULT_MAX_AUDIO_SECONDS = 1800.0  # the model card's 30 min for transcription


class VoxtralASRPipeline:
    """Owns the model and its tokenizer; turns audio into text. Lifetime: the process. Requests run one at a
    time on the caller's thread (batching across requests is the engine's job)."""

    supports_transcription = True
    supports_chat = True
    supports_speech = False
    supports_translation = False
    """OpenAI's translations task needs a "translate" prompt; Voxtral's transcription prompt (mistral_common
    ``TranscriptionRequest`` → ``lang:xx[TRANSCRIBE]``) has only the source language. Ask :meth:`chat` to
    translate instead (audio + an instruction)."""

    def __init__(
        self,
        model: VoxtralASR,
        tokenizer: VoxtralASRTokenizer,
        name: str = "",
        max_audio_seconds: float | None = DEFAULT_MAX_AUDIO_SECONDS,
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.max_audio_seconds = max_audio_seconds
        """Longest accepted audio per request (all audios of a chat together); None: no cap."""
        enc = model.cfg.encoder
        if tokenizer.sample_rate != enc.audio.sampling_rate or tokenizer.chunk_samples != enc.chunk_samples:
            raise CheckpointError(
                f"tokenizer audio ({tokenizer.sample_rate} Hz, {tokenizer.chunk_samples}-sample chunks) does not "
                f"match the model ({enc.audio.sampling_rate} Hz, {enc.chunk_samples}-sample chunks)"
            )
        cfg_id = model.cfg.audio_token_id
        if cfg_id is not None and cfg_id != tokenizer.audio_token_id:
            raise CheckpointError(
                f"config audio_token_id {cfg_id} != tokenizer [AUDIO] id {tokenizer.audio_token_id}"
            )

    @property
    def sample_rate(self) -> int:
        """Rate the model hears (16 kHz); inputs are resampled to it."""
        return self.tokenizer.sample_rate

    @property
    def dtype(self) -> torch.dtype:
        return self.model.decoder.norm.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.model.decoder.norm.weight.device

    def warmup_request(self):  # type: ignore[no-untyped-def]
        """A two-token transcription of 0.1 s of silence (the server sends it before serving)."""
        from speechserve.engine import ASRRequest

        silence = np.zeros(self.sample_rate // 10, np.float32)
        return ASRRequest(self.tokenizer.encode_transcription(silence, None), max_tokens=2)

    # ---- building blocks (also used by the golden runner) ------------------------------------------------

    def load_audio(self, audio: AudioInput, param: str = "file") -> np.ndarray:
        """Any supported audio input → 16 kHz mono float32, within ``max_audio_seconds``."""
        return load_audio(audio, self.sample_rate, self.max_audio_seconds, param)

    def features(self, padded_audio: np.ndarray) -> torch.Tensor:
        """Chunk-padded samples → log-mel chunks [C, n_mels, 3000] on the model's device (float32)."""
        a = self.model.cfg.encoder.audio
        wave = torch.from_numpy(np.ascontiguousarray(padded_audio, dtype=np.float32)).to(self.device)
        frames = self.model.cfg.encoder.chunk_frames
        return chunked_log_mel(
            wave, frames, a.num_mel_bins, a.window_size, a.hop_length, a.sampling_rate, a.global_log_mel_max
        )

    @torch.inference_mode()
    def prompt_embeddings(self, prompt: AudioPrompt) -> torch.Tensor:
        """Prompt → decoder input [L, dim]: token embeddings with the encoded audio over `[AUDIO]`."""
        audio = [self.model.encode_audio(self.features(a)) for a in prompt.audios]
        dim = self.model.cfg.decoder.dim
        rows = torch.cat(audio) if audio else torch.zeros(0, dim, device=self.device)
        ids = torch.tensor(prompt.ids, dtype=torch.long, device=self.device)
        return self.model.embed(ids, rows, self.tokenizer.audio_token_id)

    def _budget(self, n_prompt: int, requested: int) -> int:
        room = self.model.cfg.decoder.max_seq_len - n_prompt
        if room < 1:
            raise InvalidRequest(
                f"the prompt has {n_prompt} tokens; the model's context is {n_prompt + room}"
            )
        return min(requested, room)

    # ---- transcription ----------------------------------------------------------------------------------

    def transcribe_stream(
        self, audio: AudioInput, options: TranscriptionOptions | None = None
    ) -> TextStream[Transcription]:
        """Decode and check the audio now, then stream text deltas as tokens are generated."""
        opts = options or TranscriptionOptions()
        self.tokenizer.check_language(opts.language)
        samples = self.load_audio(audio)
        return TextStream(self._transcribe(samples, opts), len(samples) / self.sample_rate)

    def transcribe(self, audio: AudioInput, options: TranscriptionOptions | None = None) -> Transcription:
        """Transcribe a whole audio (the joined :meth:`transcribe_stream`)."""
        return self.transcribe_stream(audio, options).result()

    def _transcribe(
        self, samples: np.ndarray, opts: TranscriptionOptions
    ) -> Generator[TextDelta, None, Transcription]:
        sampler = Sampler(opts.temperature, opts.top_p, opts.seed)
        out = TranscriptBuilder(len(samples) / self.sample_rate, opts.language)
        chunk = self.tokenizer.chunk_samples
        for index, (start, end, piece) in enumerate(
            windows(samples, chunk, self.sample_rate, opts.segment_chunks)
        ):
            prompt = self.tokenizer.encode_transcription(piece, opts.language)
            cap = self._budget(len(prompt.ids), opts.max_tokens or self.default_max_tokens(prompt))
            seg = yield from self._generate(prompt, cap, sampler, index, before=out.text)
            out.add(start, end, seg, len(prompt.ids))
        return out.result()

    def transcription_prompts(
        self, samples: np.ndarray, opts: TranscriptionOptions
    ) -> list[tuple[AudioPrompt, float, float, int]]:
        """(prompt, start s, end s, token cap) for each 30 s chunk, as :meth:`transcribe` builds them."""
        out = []
        for start, end, piece in windows(samples, self.tokenizer.chunk_samples, self.sample_rate, True):
            prompt = self.tokenizer.encode_transcription(piece, opts.language)
            out.append((prompt, start, end, opts.max_tokens or self.default_max_tokens(prompt)))
        return out

    def default_max_tokens(self, prompt: AudioPrompt) -> int:
        """Generated-token cap of a transcription prompt: 512 per 30 s chunk of audio it carries."""
        n_chunks = sum(len(a) for a in prompt.audios) // self.tokenizer.chunk_samples
        return DEFAULT_MAX_TOKENS_PER_CHUNK * max(n_chunks, 1)

    def _generate(
        self, prompt: AudioPrompt, cap: int, sampler: Sampler, segment: int, before: str = ""
    ) -> Generator[TextDelta, None, SegmentText]:
        """Stream one prompt's text (joined to ``before``); returns the finished segment."""
        embeds = self.prompt_embeddings(prompt)
        seg = SegmentText(self.tokenizer, before)
        for step in generate_tokens(self.model, embeds, cap, sampler, frozenset({seg.eos_id})):
            if delta := seg.push(step.id, step.logprob):
                yield TextDelta(delta, segment)
        if tail := seg.flush():
            yield TextDelta(tail, segment)
        return seg

    # ---- chat -------------------------------------------------------------------------------------------

    def chat_stream(
        self, messages: list[dict[str, Any]], options: ChatOptions | None = None
    ) -> TextStream[ChatResult]:
        """Check the messages and decode their audio now, then stream the answer's text deltas."""
        opts = options or ChatOptions()
        prompt, seconds = self.chat_prompt(messages)
        cap = self._budget(len(prompt.ids), opts.max_tokens or DEFAULT_CHAT_MAX_TOKENS)
        return TextStream(self._chat(prompt, cap, opts, seconds), seconds)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> tuple[AudioPrompt, float]:
        """Messages → prompt (ids + chunk-padded audios) and the total seconds of audio they carry."""
        loaded: list[np.ndarray] = []

        def load_part(payload: Any, kind: str) -> np.ndarray:
            samples = self._load_part(payload, kind, sum(len(a) for a in loaded) / self.sample_rate)
            loaded.append(samples)
            return samples

        normalized, audios = normalize_messages(messages, load_part)
        seconds = sum(len(a) for a in audios) / self.sample_rate
        if audios:
            check_duration(seconds, self.max_audio_seconds, "messages")
        return self.tokenizer.encode_chat(normalized), seconds

    def chat(self, messages: list[dict[str, Any]], options: ChatOptions | None = None) -> ChatResult:
        """Answer a chat with audio (the joined :meth:`chat_stream`)."""
        return self.chat_stream(messages, options).result()

    def _load_part(self, payload: Any, kind: str, seconds_before: float = 0.0) -> np.ndarray:
        """One audio part, decoded within what the chat's earlier parts left of ``max_audio_seconds`` (so
        N parts never hold more than one cap's worth of samples)."""
        cap = self.max_audio_seconds
        left = None if cap is None else max(cap - seconds_before, 1.0 / self.sample_rate)
        try:
            if kind == "base64":
                return load_base64_audio(payload, self.sample_rate, left, "messages")
            return load_audio(payload, self.sample_rate, left, "messages")
        except AudioTooLong as exc:
            if cap is not None and left is not None and left < cap:
                raise audio_too_long(cap, param="messages") from exc  # the chat's audio together
            raise

    def _chat(
        self, prompt: AudioPrompt, cap: int, opts: ChatOptions, seconds: float
    ) -> Generator[TextDelta, None, ChatResult]:
        sampler = Sampler(opts.temperature, opts.top_p, opts.seed)
        seg = yield from self._generate(prompt, cap, sampler, 0)
        usage = Usage(seconds, len(prompt.ids), seg.completion_tokens)
        return ChatResult(seg.text, usage, seg.finish_reason)
