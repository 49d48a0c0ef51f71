"""A loaded Voxtral TTS model that turns text + voice into streamed 24 kHz audio chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from speechserve.errors import EncoderWeightsMissing, InvalidRequest, UnknownVoice
from speechserve.models.voxtral_tts import VoxtralTTS
from speechserve.models.voxtral_tts.generation import FrameStep, generate_frames, request_noise
from speechserve.models.voxtral_tts.tokenizer import VoxtralTTSTokenizer
from speechserve.options import AudioChunk, RefAudio, SynthesisOptions

DEFAULT_VOICE = "casual_male"


@dataclass(frozen=True)
class ClonedVoice:
    """A reference recording encoded once: its voice rows [n, dim] and the WAV the tokenizer counts."""

    rows: torch.Tensor
    wav: bytes


class VoxtralTTSPipeline:
    """Owns the model, its tokenizer and its voice presets. Lifetime: the process; thread-compatible only."""

    supports_speech = True
    supports_transcription = False
    supports_translation = False
    supports_chat = False

    def __init__(
        self,
        model: VoxtralTTS,
        tokenizer: VoxtralTTSTokenizer,
        voices: dict[str, torch.Tensor],
        name: str = "",
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self._voices = voices
        self.sample_rate: int = model.cfg.codec.sampling_rate
        self.samples_per_frame: int = model.cfg.codec.samples_per_frame
        self._core = None

    @property
    def voices(self) -> list[str]:
        """Preset voice names, sorted."""
        return sorted(self._voices)

    @property
    def default_voice(self) -> str:
        return DEFAULT_VOICE if DEFAULT_VOICE in self._voices else self.voices[0]

    @property
    def supports_voice_cloning(self) -> bool:
        """True when the checkpoint has codec-encoder weights (the public release does not)."""
        return self.model.audio_tokenizer.has_encoder

    @property
    def dtype(self) -> torch.dtype:
        return self.model.backbone.norm.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.model.backbone.norm.weight.device

    def clone_voice(self, ref_audio: RefAudio) -> ClonedVoice:
        """Encode a reference recording once (codec encoder) into voice rows reusable for many prompts."""
        if isinstance(ref_audio, ClonedVoice):
            return ref_audio
        if not self.supports_voice_cloning:
            raise EncoderWeightsMissing()
        from speechserve.audio import decode_audio, encode_audio, resample

        if isinstance(ref_audio, bytes):
            samples, _ = decode_audio(ref_audio, target_rate=self.sample_rate)
        else:
            samples, rate = ref_audio
            samples = resample(np.asarray(samples, dtype=np.float32), rate, self.sample_rate)
        if len(samples) == 0:
            raise InvalidRequest("ref_audio contains no samples", param="ref_audio")
        wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            rows = self.model.voice_rows_from_audio(wave)
        return ClonedVoice(rows, encode_audio(samples, self.sample_rate, "wav"))

    def prompt_ids(
        self, text: str, voice: str | None = None, ref_audio: RefAudio | None = None
    ) -> list[int] | None:
        """Prompt ids (cheap: checks the text and the voice, tokenizes). None when ``ref_audio`` is a raw
        clip that must be encoded first (then :meth:`prompt` does both)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("input text must not be empty", param="input")
        if ref_audio is not None:
            if not self.supports_voice_cloning:
                raise EncoderWeightsMissing()
            if not isinstance(ref_audio, ClonedVoice):
                return None
            return self.tokenizer.encode_reference(text, ref_audio.wav)
        return self.tokenizer.encode_voice(text, self._voice_name(voice))

    def _voice_name(self, voice: str | None) -> str:
        name = (voice or self.default_voice).lower()
        if name not in self._voices:
            raise UnknownVoice(voice or "", self.voices)
        return name

    def prompt(
        self,
        text: str,
        voice: str | None = None,
        ref_audio: RefAudio | None = None,
        ids: list[int] | None = None,
    ) -> tuple[list[int], torch.Tensor]:
        """Prompt ids and input embeddings [L, dim] (voice rows spliced over the `[AUDIO]` positions).

        ``ids`` from :meth:`prompt_ids` skips tokenizing again. A raw ``ref_audio`` clip is encoded here.
        """
        if ref_audio is not None:
            cloned = self.clone_voice(ref_audio)
            if ids is None:
                if not text.strip():
                    raise InvalidRequest("input text must not be empty", param="input")
                ids = self.tokenizer.encode_reference(text, cloned.wav)
            rows = cloned.rows
        else:
            ids = ids if ids is not None else self.prompt_ids(text, voice)
            rows = self._voices[self._voice_name(voice)]
        ids_t = torch.tensor(ids, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            return ids, self.model.embed_prompt(ids_t, rows)  # type: ignore[arg-type]

    def frames(
        self,
        text: str,
        voice: str | None = None,
        options: SynthesisOptions | None = None,
        ref_audio: RefAudio | None = None,
    ) -> Iterator[FrameStep]:
        """The raw frame generator (codes, hidden states, flow states), END frame included."""
        opts = options or SynthesisOptions()
        _, embeds = self.prompt(text, voice, ref_audio)
        noise = request_noise(opts, self.model.cfg.codes.n_acoustic_codebook)
        steps = opts.n_decoding_steps or self.model.cfg.flow.n_decoding_steps
        return generate_frames(
            self.model, embeds, noise, opts.max_frames, opts.cfg_alpha, steps, not opts.ignore_end
        )

    def synthesize(
        self,
        text: str,
        voice: str | None = None,
        options: SynthesisOptions | None = None,
        ref_audio: RefAudio | None = None,
    ) -> Iterator[AudioChunk]:
        """Yield audio chunks as frames are generated: the first after ``options.first_chunk_frames`` frames.

        Runs on the engine (synchronously, in the caller's thread); validation errors raise immediately.
        """
        from speechserve.engine import SpeechRequest
        from speechserve.engine.offline import stream

        request = SpeechRequest(text, voice, ref_audio, options or SynthesisOptions())
        return stream(self._offline_core(), request)

    def generate(
        self,
        text: str,
        voice: str | None = None,
        options: SynthesisOptions | None = None,
        ref_audio: RefAudio | None = None,
    ) -> AudioChunk:
        """The whole utterance as one chunk (the joined stream)."""
        chunks = list(self.synthesize(text, voice, options, ref_audio))
        samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        return AudioChunk(samples, self.sample_rate, 0, len(samples) // self.samples_per_frame, True)

    # ---- the speech API (see server/speech/capability.py) ----------------------------------------------------
    speech_fields = ("temperature", "max_tokens", "cfg_alpha")
    """The request extensions that change Voxtral's audio; the rest (``top_p``, ``top_k`` …) do not."""

    def speech_options(self, fields: dict[str, Any], base: SynthesisOptions) -> SynthesisOptions:
        """Options of each segment of a server request: the server's own ``SynthesisOptions`` are Voxtral's
        (``temperature`` is already the flow-noise scale, ``max_tokens`` the frame cap, ``cfg_alpha`` the
        guidance weight), so ``fields`` add nothing."""
        return base

    def speech_segments(self, text: str, options: SynthesisOptions, max_chars: int) -> list[str]:
        """Long input cut at sentences, then clauses, then words (no hard text limit of its own)."""
        from speechserve.tts.segmentation import split_text

        return split_text(text, max_chars)

    def weight_bytes_per_step(self) -> int:
        """Weight bytes one engine step reads (benchmarks report achieved GB/s from it)."""
        from speechserve.models.voxtral_tts.bench import weight_bytes_per_step

        return weight_bytes_per_step(self, self.model.cfg.flow.n_decoding_steps)

    def bare_loop_seconds(self, frames: int, text: str) -> float:
        """Seconds of the bare reference loop for one request (the engine-overhead baseline)."""
        from speechserve.models.voxtral_tts.bench import bare_model_seconds

        return bare_model_seconds(self, frames, text)

    def warmup_request(self):  # type: ignore[no-untyped-def]
        """A two-frame request that exercises every stage (the server sends it before serving)."""
        from speechserve.engine import SpeechRequest

        return SpeechRequest("Warm-up.", self.default_voice, None, SynthesisOptions(seed=0, max_frames=2))

    def _offline_core(self):  # type: ignore[no-untyped-def]
        """One engine per pipeline for synchronous use (a single KV slot; the server builds its own).

        No real-time listener here, so the chunk schedule ignores wall-clock slack: it depends only on frame
        counts, which keeps same-seed audio bit-identical run to run."""
        if self._core is None:
            from speechserve.engine import EngineConfig, EngineCore
            from speechserve.models.voxtral_tts.program import VoxtralTTSProgram

            config = EngineConfig(max_batch=1, low_slack_seconds=float("-inf"))
            self._core = EngineCore(self, config, program=VoxtralTTSProgram(self, config))
        return self._core
