"""Every server setting, in one pydantic-settings class: CLI flags, ``SPEECHSERVE_*`` env vars, or code.

Precedence: values passed to the constructor (the CLI does this) > environment variables > defaults.
List and dict fields read JSON from the environment (``SPEECHSERVE_VOICE_ALIASES='{"alloy": "fr_female"}'``);
``SPEECHSERVE_API_KEYS`` and ``SPEECHSERVE_CORS_ORIGINS`` also take a comma-separated list.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OPENAI_VOICE_ALIASES: dict[str, str] = {
    "alloy": "neutral_female",
    "ash": "casual_male",
    "ballad": "neutral_male",
    "cedar": "neutral_male",
    "coral": "cheerful_female",
    "echo": "neutral_male",
    "fable": "casual_male",
    "marin": "casual_female",
    "nova": "cheerful_female",
    "onyx": "neutral_male",
    "sage": "neutral_female",
    "shimmer": "casual_female",
    "verse": "casual_male",
}
"""OpenAI voice names → Voxtral presets of the same gender and a similar register (all English)."""

OPENAI_MODEL_ALIASES: tuple[str, ...] = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""OpenAI speech model names accepted for the first served speech model, so unmodified clients work."""
OPENAI_TRANSCRIPTION_ALIASES: tuple[str, ...] = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
"""OpenAI transcription model names accepted for the first served speech-to-text model."""
OPENAI_REALTIME_ALIASES: tuple[str, ...] = (
    "gpt-realtime-whisper", "gpt-live-transcribe", "gpt-transcribe", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
    "whisper-1", "gpt-realtime", "gpt-realtime-mini", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview",
)  # fmt: skip
"""OpenAI model names a realtime session may use for the first realtime model (see ``realtime_model_aliases``)."""

CommaList = Annotated[list[str], NoDecode]


class ServerSettings(BaseSettings):
    """Configuration of `speechserve serve` / :func:`speechserve.server.create_app`."""

    model_config = SettingsConfigDict(env_prefix="SPEECHSERVE_", extra="ignore", validate_default=True)

    # ---- the models -------------------------------------------------------------------------------------------
    model: CommaList = Field(min_length=1)
    """Checkpoints to serve: local directories or Hugging Face ids (looked up in the cache, else downloaded).
    One string is one model; several: repeat ``--model``, or a JSON list / comma-separated list in
    ``SPEECHSERVE_MODEL``. Each request is routed by its ``model`` field; the first model able to do a task
    answers requests that name none."""
    served_model_name: list[str] = []
    """Names clients use in ``model``; the first is the id ``/v1/models`` shows. Empty: the hub id, or a local
    directory's own name (the machine's path is accepted in requests but never shown). With one model every
    name is accepted for it; with several, give exactly one name per model, in order."""
    model_aliases: list[str] = list(OPENAI_MODEL_ALIASES)
    """Further names of the first speech (TTS) model (OpenAI's by default, so clients that hard-code ``tts-1``
    work)."""
    transcription_model_aliases: list[str] = list(OPENAI_TRANSCRIPTION_ALIASES)
    """Further names of the first speech-to-text model (``whisper-1`` … by default)."""
    tokenizer: str | None = None
    """A ``tekken.json`` to use instead of the checkpoint's own."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) when ``model`` is a hub id."""
    codec: str | None = None
    """Audio codec of models that load one separately (Dia's DAC without a ``dac/`` folder): a directory, a
    ``weights.pth`` or a hub id; None: ``$SPEECHSERVE_DIA_CODEC``, else ``descript/dac_44khz``."""
    device: str | None = None
    """``cpu``, ``cuda``, ``cuda:1`` …; None: CUDA when available."""
    dtype: str | None = None
    """``float32``, ``bfloat16`` or ``float16``; None: bf16 on CUDA, fp32 on CPU."""

    # ---- network and access -------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Interface to bind; ``0.0.0.0`` to accept connections from other machines."""
    port: int = Field(8000, ge=0, le=65535)
    """TCP port (0: any free port, printed at start-up)."""
    api_keys: CommaList = []
    """Accepted ``Authorization: Bearer`` keys for ``/v1/*``; empty: no authentication."""
    cors_origins: CommaList = []
    """Origins allowed by CORS (``*`` for any); empty: no CORS headers."""
    log_level: str = "info"
    """Uvicorn and speechserve log level."""

    # ---- requests ---------------------------------------------------------------------------------------------------
    max_input_chars: int = Field(4096, ge=1)
    """Longest accepted ``input`` (OpenAI's limit); longer → 400."""
    max_body_mb: float = Field(64.0, gt=0)
    """Largest JSON request body, in MB (10^6 bytes): room for a chat's base64 audio parts or a speech
    request's ``ref_audio``. Larger → 413, refused from ``Content-Length`` before the body is read, or while it
    streams in when there is none. Multipart uploads are capped by ``max_upload_mb`` instead."""
    voice_aliases: dict[str, str] = dict(OPENAI_VOICE_ALIASES)
    """Extra voice names → presets. Aliases whose preset the checkpoint lacks are dropped at start-up."""
    default_voice: str | None = None
    """Voice used when a request names none; None: the model's default (``casual_male``)."""
    max_frames: int = Field(2048, ge=1)
    """Most 80 ms frames generated per segment (2048 ≈ 164 s, the reference default); ``max_tokens`` lowers it."""
    segment_chars: int = Field(400, ge=1)
    """Longer inputs are split at sentence (then clause, then word) boundaries into segments of at most this
    many characters, generated in order and joined with a crossfade."""
    crossfade_ms: float = Field(15.0, ge=0.0, le=200.0)
    """Crossfade between consecutive segments, in milliseconds."""
    first_chunk_frames: int = Field(1, ge=1)
    """Frames generated before the first audio chunk is sent (1 = 80 ms: lowest time to first audio)."""
    max_chunk_frames: int = Field(25, ge=1)
    """Streamed chunks grow up to this many frames (fewer, larger chunks: less overhead)."""

    # ---- speech-to-text requests ---------------------------------------------------------------------------------
    max_upload_mb: float = Field(25.0, gt=0)
    """Largest audio accepted, in MB (10^6 bytes): a transcription upload, each chat audio part (decoded), a
    fetched URL or a local file. OpenAI's limit is 25 MB. Larger → 413."""
    max_audio_seconds: float = Field(1800.0, gt=0)
    """Longest audio per request, in seconds (all audios of a chat together); longer → 400."""
    allowed_local_media_path: str | None = None
    """Directory whose files chat requests may name as ``file://`` audio URLs (symlinks resolved, nothing
    outside it). None: ``file://`` URLs are refused."""
    media_fetch_timeout: float = Field(10.0, gt=0)
    """Seconds allowed to fetch one http(s) audio URL, redirects included."""
    media_max_redirects: int = Field(3, ge=0)
    """Redirects followed when fetching an audio URL (each target is checked like the first)."""
    asr_max_seq_len: int = Field(4096, ge=64)
    """Positions of one speech-to-text request in the KV cache: prompt (375 per 30 s of audio in a chat;
    transcription prompts hold one 30 s chunk each) + generated tokens. Longer chat prompts → 400."""

    # ---- engine -------------------------------------------------------------------------------------------------------
    max_waiting: int = Field(64, ge=1)
    """Prompts allowed to wait for a batch slot, per model (a speech segment, a 30 s transcription chunk, a
    chat); one more is answered 429."""
    max_batch: int = Field(32, ge=1)
    """Sequences generated together in one engine step, per model (each has its own engine and KV cache)."""
    eager: bool = False
    """Turn off CUDA graphs and every static-shape optimisation (debugging, parity checks)."""
    cpu_threads: int | None = Field(None, ge=1)
    """Torch intra-op threads when serving on CPU. Default: one fewer than the cores (at least 1), so the
    HTTP event loop keeps a core; on a 2-core machine two OpenMP threads plus the event loop oversubscribe
    the CPU and stall every parallel region (measured 5× slower per frame)."""
    warmup: bool = True
    """Run one short generation at start-up so the first request does not pay for lazy initialisation."""

    # ---- realtime sessions (WS /v1/realtime) ----------------------------------------------------------------------
    realtime_max_event_mb: float = Field(15.0, gt=0)
    """Largest client message on ``/v1/realtime`` (an ``input_audio_buffer.append`` with its base64 audio), in
    MB (10^6 bytes); larger → an ``error`` event (``event_too_large``) and the session stays open. OpenAI's
    limit is 15 MiB; keep it under uvicorn's ``ws_max_size`` (16 MiB), past which uvicorn closes the
    connection."""
    realtime_max_buffer_seconds: float = Field(30.0, gt=0)
    """Audio a realtime session may have sent that the model has not heard yet, in seconds (all its open
    utterances together): memory per session is bounded by it. Appends beyond it are refused with an
    ``error`` event (``buffer_full``) and dropped; the session stays open. The model hears audio as fast as
    the engine steps, so only a client sending far faster than real time (or one waiting for a batch slot)
    meets it."""
    speech_stream_idle_timeout_s: float = Field(300.0, gt=0)
    """``WS /v1/audio/speech/stream``: a session that sends no event for this long while nothing of it is queued
    or being spoken is closed (an ``error`` event ``idle_timeout``, then close code 1000), so abandoned
    connections do not pile up. The check runs once per period, so an idle session closes after one to two
    periods."""
    realtime_model_aliases: list[str] = list(OPENAI_REALTIME_ALIASES)
    """Model names a realtime session may use for the first model that serves ``/v1/realtime`` when no served
    model answers to them (OpenAI's transcription and realtime model names by default)."""

    @field_validator("model", "api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("voice_aliases")
    @classmethod
    def _lower_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.lower(): v.lower() for k, v in value.items()}

    @model_validator(mode="after")
    def _chunks_grow(self) -> ServerSettings:
        if self.max_chunk_frames < self.first_chunk_frames:
            raise ValueError("max_chunk_frames must be ≥ first_chunk_frames")
        return self

    @model_validator(mode="after")
    def _one_name_per_model(self) -> ServerSettings:
        if len(self.model) > 1 and self.served_model_name and len(self.served_model_name) != len(self.model):
            raise ValueError(
                f"served_model_name: {len(self.model)} models need exactly one name each "
                f"(got {len(self.served_model_name)})"
            )
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1_000_000)

    def served_id(self, index: int = 0) -> str:
        """The id ``model[index]`` is shown as: its first served name, else the hub id or the local directory's
        own name (:func:`speechserve.loading.model_id`: never a path of the machine)."""
        from speechserve.loading import model_id

        if self.served_model_name:
            return self.served_model_name[0 if len(self.model) == 1 else index]
        return model_id(self.model[index])

    def model_names(self, index: int = 0) -> list[str]:
        """The names a request's ``model`` may carry for ``model[index]`` (as given first), before the OpenAI
        aliases (given out by task, see ``state.py``). Which of them are shown: see ``state.py``."""
        ref = self.model[index]
        if len(self.model) == 1 and self.served_model_name:
            return list(dict.fromkeys(self.served_model_name))
        if self.served_model_name:
            return [self.served_model_name[index]]
        return list(dict.fromkeys([ref, ref.rstrip("/").rsplit("/", 1)[-1]]))

    # ---- quantization ---------------------------------------------------------------------------------------------
    isq: Literal["int8", "int8-dynamic", "int4", "fp8"] | None = None
    """In-situ quantization of every served model's weights at load (:mod:`speechserve.models.quantize`):
    ``int8`` (weight-only: CPU our kernel, CUDA torchao), ``int8-dynamic`` (activations too: CPU fbgemm, faster
    and less exact; CUDA torchao), ``int4`` (torchao, CUDA only) or
    ``fp8`` (torchao, GPUs of compute capability ≥ 8.9); each family keeps its sensitive parts (codec, small
    heads) in full precision. None: the checkpoint's weights as they are."""
