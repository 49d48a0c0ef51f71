"""Every server setting, in one pydantic-settings class: CLI flags, ``SPEECHSERVE_*`` env vars, or code.

Precedence: values passed to the constructor (the CLI does this) > environment variables > defaults.
List and dict fields read JSON from the environment (``SPEECHSERVE_VOICE_ALIASES='{"alloy": "fr_female"}'``);
``SPEECHSERVE_API_KEYS`` and ``SPEECHSERVE_CORS_ORIGINS`` also take a comma-separated list.
"""

from __future__ import annotations

from typing import Annotated

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
"""OpenAI speech model names accepted for the served model, so unmodified clients work."""

CommaList = Annotated[list[str], NoDecode]


class ServerSettings(BaseSettings):
    """Configuration of `speechserve serve` / :func:`speechserve.server.create_app`."""

    model_config = SettingsConfigDict(env_prefix="SPEECHSERVE_", extra="ignore", validate_default=True)

    # ---- the model --------------------------------------------------------------------------------------------
    model: str = Field(min_length=1)
    """Checkpoint to serve: a local directory or a Hugging Face id (looked up in the cache, else downloaded)."""
    served_model_name: list[str] = []
    """Names clients use in ``model``; empty: the ``model`` value itself and its last path component."""
    model_aliases: list[str] = list(OPENAI_MODEL_ALIASES)
    """Further accepted ``model`` names (OpenAI's by default, so clients that hard-code ``tts-1`` work)."""
    tokenizer: str | None = None
    """A ``tekken.json`` to use instead of the checkpoint's own."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) when ``model`` is a hub id."""
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

    # ---- engine -------------------------------------------------------------------------------------------------------
    max_waiting: int = Field(64, ge=1)
    """Requests (segments) allowed to wait for a batch slot; one more is answered 429."""
    max_batch: int = Field(32, ge=1)
    """Sequences generated together in one engine step."""
    warmup: bool = True
    """Run one short generation at start-up so the first request does not pay for lazy initialisation."""

    @field_validator("api_keys", "cors_origins", mode="before")
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

    def model_names(self) -> list[str]:
        """Every name a request's ``model`` may carry for the served model (first: the canonical one)."""
        names = list(self.served_model_name)
        if not names:
            names = [self.model, self.model.rstrip("/").rsplit("/", 1)[-1]]
        return list(dict.fromkeys([*names, *self.model_aliases]))
