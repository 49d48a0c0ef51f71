"""How to generate one Dia utterance: a frozen options object with the reference's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from speechserve.errors import InvalidRequest

DEFAULT_CFG_SCALE = 3.0
DEFAULT_TEMPERATURE = 1.2
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 45
"""``Dia.generate``'s defaults (nari-labs/dia HEAD) = transformers' generation_config of Dia-1.6B-0626."""


@dataclass(frozen=True)
class DiaOptions:
    """Sampling, length and streaming settings of one utterance (``dataclasses.replace`` to change one)."""

    cfg_scale: float = DEFAULT_CFG_SCALE
    """Guidance s in G = L_cond + s·(L_cond − L_uncond)."""
    temperature: float = DEFAULT_TEMPERATURE
    """0 = greedy (argmax of the CFG-filtered conditional logits)."""
    top_p: float = DEFAULT_TOP_P
    """Nucleus mass kept after the CFG filter and the temperature (1 = off)."""
    top_k: int = DEFAULT_TOP_K
    """CFG filter size: the top-k ids of G are the candidates, their values are taken from L_cond."""
    max_tokens: int | None = None
    """Delayed rows of the whole utterance, the BOS row and any audio prompt included (nari's
    ``max_tokens``); None = the checkpoint's limit (3072 ≈ 35.7 s). EOS is forced at row max_tokens − 15."""
    max_frames: int | None = None
    """At most this many generated audio frames (512 samples each, 86.1 per second); None = no extra bound."""
    seed: int | None = None
    """Seed of this utterance's own generator: same seed → same audio bit for bit. None: random."""
    ref_text: str | None = None
    """Transcript of ``ref_audio`` (voice cloning), with its [S1]/[S2] tags; it is prepended to the text."""
    first_chunk_frames: int = 8
    """Complete frames (≈ 11.6 ms each) decoded into the first streamed chunk."""
    max_chunk_frames: int = 86
    """Later chunks grow up to this many frames while the listener is ahead."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.cfg_scale <= 20.0:
            raise InvalidRequest("cfg_scale must be between 0 and 20", param="cfg_scale")
        if not 0.0 <= self.temperature <= 5.0:
            raise InvalidRequest("temperature must be between 0 and 5", param="temperature")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidRequest("top_p must be in (0, 1]", param="top_p")
        if self.top_k < 1:
            raise InvalidRequest("top_k must be at least 1", param="top_k")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
        if self.max_frames is not None and self.max_frames < 1:
            raise InvalidRequest("max_frames must be at least 1", param="max_frames")
        if self.first_chunk_frames < 1 or self.max_chunk_frames < self.first_chunk_frames:
            raise InvalidRequest("need 1 ≤ first_chunk_frames ≤ max_chunk_frames", param="first_chunk_frames")

    @property
    def sampling_key(self) -> tuple[float, float, float, int]:
        """Requests with equal keys are sampled together in one batched call."""
        return (self.cfg_scale, self.temperature, self.top_p, self.top_k)
