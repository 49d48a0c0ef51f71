"""A loaded Dia model + DAC codec: dialogue text ([S1]/[S2] tags, nonverbals) → streamed 44.1 kHz audio."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from speechserve.errors import InvalidRequest, UnsupportedFeature
from speechserve.models.dia.codec_stage import DacWindowDecoder
from speechserve.models.dia.dac import DAC
from speechserve.models.dia.generation import generate as generate_codes
from speechserve.models.dia.model import Dia
from speechserve.models.dia.options import DiaOptions
from speechserve.models.dia.text import SPEAKER_TAGS, encode_text
from speechserve.options import AudioChunk, RefAudio, SynthesisOptions

NO_DAC_ENCODER = "voice cloning needs the DAC encoder, whose weights this codec checkpoint does not contain"


@dataclass(frozen=True)
class DiaVoicePrompt:
    """A reference recording encoded once by the DAC encoder: its codes [T, 9], reusable for many requests."""

    codes: torch.Tensor


def as_dia_options(options: DiaOptions | SynthesisOptions | None) -> DiaOptions:
    """The Dia options of a request. From the generic ``SynthesisOptions``: ``seed`` and ``max_frames``
    (counted in Dia frames of 512 samples); everything else keeps Dia's reference defaults."""
    if options is None:
        return DiaOptions()
    if isinstance(options, DiaOptions):
        return options
    if isinstance(options, SynthesisOptions):
        return DiaOptions(seed=options.seed, max_frames=options.max_frames)
    raise InvalidRequest(
        f"Dia takes DiaOptions or SynthesisOptions, not {type(options).__name__}", param="options"
    )


def _script_size(text: str) -> int:
    """Encoder positions ``text`` takes: UTF-8 bytes, a speaker tag counting one (as :func:`encode_text`)."""
    data = text.encode("utf-8")
    for tag, byte in SPEAKER_TAGS:
        data = data.replace(tag, byte)
    return len(data)


class DiaPipeline:
    """Owns the model, the codec and the SDK's offline engine. Lifetime: the process; thread-compatible only."""

    supports_speech = True
    supports_transcription = False
    supports_translation = False
    supports_chat = False
    default_voice = None

    def __init__(self, model: Dia, dac: DAC, name: str = "") -> None:
        self.model, self.dac, self.name = model, dac, name
        self.cfg = model.cfg
        self.codec = DacWindowDecoder(dac)
        self.sample_rate: int = dac.cfg.sample_rate
        self.samples_per_frame: int = dac.cfg.hop_length
        self._core = None

    @property
    def voices(self) -> list[str]:
        """None: Dia has no preset voices; speakers come from [S1]/[S2] tags, or are cloned with ``ref_audio``."""
        return []

    @property
    def supports_voice_cloning(self) -> bool:
        """True when the DAC has its encoder (needed to turn ``ref_audio`` into an audio prompt)."""
        return self.dac.has_encoder

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---- prompts -------------------------------------------------------------------------------------------
    def text_ids(self, text: str, options: DiaOptions, cloning: bool = False) -> list[int]:
        """Byte ids the encoder reads: the reference transcript (when cloning) followed by the text."""
        if cloning and not (options.ref_text and options.ref_text.strip()):
            raise InvalidRequest(
                "voice cloning needs ref_text: the transcript of ref_audio", param="ref_text"
            )
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("input text must not be empty", param="input")
        full = (options.ref_text or "") + text if cloning else text
        return encode_text(full, self.cfg.encoder.max_positions)

    def clone_voice(self, ref_audio: RefAudio) -> DiaVoicePrompt:
        """Encode a reference recording once (resampled to 44.1 kHz mono, DAC encoder) into prompt codes."""
        if isinstance(ref_audio, DiaVoicePrompt):
            return ref_audio
        if not self.supports_voice_cloning:
            raise UnsupportedFeature(NO_DAC_ENCODER, param="ref_audio")
        from speechserve.audio import decode_audio, resample

        if isinstance(ref_audio, bytes):
            samples, _ = decode_audio(ref_audio, target_rate=self.sample_rate)
        else:
            samples, rate = ref_audio
            samples = resample(np.asarray(samples, dtype=np.float32), rate, self.sample_rate)
        if len(samples) == 0:
            raise InvalidRequest("ref_audio contains no samples", param="ref_audio")
        wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(self.dac.device)
        with torch.inference_mode():
            codes = self.dac.encode(wave[None])[0].t().cpu()
        return DiaVoicePrompt(codes)

    # ---- the SDK -------------------------------------------------------------------------------------------
    def synthesize(
        self,
        text: str,
        options: DiaOptions | SynthesisOptions | None = None,
        *,
        voice: str | None = None,
        ref_audio: RefAudio | None = None,
    ) -> Iterator[AudioChunk]:
        """Yield float32 44.1 kHz chunks as frames complete (the first after ``first_chunk_frames``).

        Runs on the engine (synchronously, in the caller's thread); validation errors raise immediately.
        """
        from speechserve.engine import SpeechRequest
        from speechserve.engine.offline import stream

        return stream(self._offline_core(), SpeechRequest(text, voice, ref_audio, as_dia_options(options)))  # type: ignore[arg-type]

    def generate(
        self,
        text: str,
        options: DiaOptions | SynthesisOptions | None = None,
        *,
        voice: str | None = None,
        ref_audio: RefAudio | None = None,
    ) -> AudioChunk:
        """The whole utterance as one chunk (the joined stream)."""
        chunks = list(self.synthesize(text, options, voice=voice, ref_audio=ref_audio))
        samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
        return AudioChunk(samples, self.sample_rate, 0, len(samples) // self.samples_per_frame, True)

    def codes(
        self, text: str, options: DiaOptions | None = None, ref_audio: RefAudio | None = None
    ) -> torch.Tensor:
        """Undelayed DAC codes [frames, 9] of one utterance from the plain reference loop (no engine)."""
        opts = options or DiaOptions()
        prompt = self.clone_voice(ref_audio).codes if ref_audio is not None else None
        ids = self.text_ids(text, opts, cloning=prompt is not None)
        return generate_codes(self.model, [ids], opts, [prompt])[0].codes

    def decode(self, codes: torch.Tensor) -> np.ndarray:
        """One-shot DAC decoding of codes [frames, 9] → float32 PCM."""
        return self.codec.decode_all(codes)

    # ---- the speech API (see server/speech/capability.py) ----------------------------------------------------
    speech_fields = ("temperature", "top_p", "top_k", "max_tokens", "cfg_scale", "ref_text")
    """The request extensions Dia applies (``cfg_alpha`` is Voxtral's guidance; Dia's is ``cfg_scale``)."""

    def speech_options(self, fields: dict[str, Any], base: SynthesisOptions) -> DiaOptions:
        """Options of each segment of a server request: Dia's reference defaults with the server's ``seed`` and
        frame cap (``base.max_frames``, counted in Dia frames), then the request's ``temperature`` (0 = greedy),
        ``top_p``, ``top_k``, ``cfg_scale``, ``max_tokens`` (nari's: decoder rows of each segment) and — when
        cloning, ``fields["ref_audio"]`` being :meth:`clone_voice`'s prompt — ``ref_text``.

        ``InvalidRequest`` names the field at fault: a bad value, a clone without its transcript, a transcript
        taking over half the encoder (it precedes every segment), a clip too long for the decoder."""
        prompt = fields.get("ref_audio")
        chosen = {k: v for k, v in fields.items() if k in self.speech_fields}
        if prompt is None:
            chosen.pop("ref_text", None)  # only a clone's transcript is read
        options = replace(as_dia_options(base), **chosen)
        if prompt is None:
            return options
        if not (options.ref_text and options.ref_text.strip()):
            raise InvalidRequest(
                "voice cloning needs ref_text: the transcript of ref_audio", param="ref_text"
            )
        limit = self.cfg.encoder.max_positions
        if _script_size(options.ref_text) > limit // 2:  # it is read again in front of every segment
            raise InvalidRequest(
                f"ref_text takes {_script_size(options.ref_text)} of Dia's {limit} encoder bytes; keep it to "
                f"{limit // 2} so that the text to speak has room",
                param="ref_text",
            )
        frames = prompt.codes.shape[0] if isinstance(prompt, DiaVoicePrompt) else 0
        room = self.cfg.decoder.max_positions - self.cfg.max_delay - 2  # the BOS row and one new frame
        if frames > room:
            seconds = self.samples_per_frame / self.sample_rate
            raise InvalidRequest(
                f"ref_audio is {frames * seconds:.1f} s long; Dia's decoder holds at most {room * seconds:.1f} s "
                "of reference audio and new speech together",
                param="ref_audio",
            )
        return options

    def speech_segments(self, text: str, options: DiaOptions, max_chars: int) -> list[str]:
        """Long dialogue cut at speaker turns, then inside long turns (their tag repeated), each segment
        within ``max_chars`` and — with a clone's transcript in front — Dia's encoder limit in bytes."""
        from speechserve.tts.segmentation import split_dialogue

        room = self.cfg.encoder.max_positions - (_script_size(options.ref_text) if options.ref_text else 0)
        return split_dialogue(text, max_chars, room, _script_size)

    def warmup_request(self) -> Any:
        """A short request that exercises every stage (the server sends it before serving)."""
        from speechserve.engine import SpeechRequest

        opts = replace(DiaOptions(seed=0, max_frames=2), first_chunk_frames=1, max_chunk_frames=1)
        return SpeechRequest("[S1] Warm-up.", None, None, opts)  # type: ignore[arg-type]

    def _offline_core(self) -> Any:
        """One engine per pipeline for synchronous use (a single slot; the server builds its own). No
        real-time listener here, so the chunk schedule depends only on frame counts (bit-identical reruns)."""
        if self._core is None:
            from speechserve.engine import EngineConfig, EngineCore
            from speechserve.models.dia.program import DiaProgram

            config = EngineConfig(max_batch=1, low_slack_seconds=float("-inf"))
            self._core = EngineCore(self, config, program=DiaProgram(self, config))
        return self._core
