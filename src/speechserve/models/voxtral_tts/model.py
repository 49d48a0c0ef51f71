"""Voxtral TTS as one module: backbone, audio-codebook embedding, flow head and codec.

Architecture only; the per-frame generation loop lives with the code that schedules it.
"""

from __future__ import annotations

import torch
from torch import nn

from speechserve.models.mistral import MistralBackbone
from speechserve.models.voxtral_tts.codec import VoxtralCodec
from speechserve.models.voxtral_tts.config import AudioCodesConfig, VoxtralTTSConfig
from speechserve.models.voxtral_tts.flow import FlowMatchingAudioTransformer


class AudioCodebookEmbeddings(nn.Module):
    """One table for all 37 codebooks; a frame's input embedding is the sum of its 37 rows (spec §5.5)."""

    def __init__(self, codes: AudioCodesConfig, dim: int) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(codes.embedding_rows, dim)
        self.codes_cfg = codes
        self.register_buffer("offsets", torch.empty(codes.n_codebooks, dtype=torch.long), persistent=False)
        self.reset_derived_buffers()

    def reset_derived_buffers(self, device: torch.device | None = None) -> None:
        self.offsets = torch.tensor(
            self.codes_cfg.offsets, dtype=torch.long, device=device or self.offsets.device
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [..., 37] in +2 space → summed embedding [..., dim]."""
        return self.embeddings(codes + self.offsets).sum(dim=-2)


class VoxtralTTS(nn.Module):
    """Text + voice rows → per-frame hidden states → 37 codes per frame → 24 kHz PCM."""

    def __init__(self, cfg: VoxtralTTSConfig, with_encoder: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = MistralBackbone(cfg.backbone)
        self.audio_embeddings = AudioCodebookEmbeddings(cfg.codes, cfg.backbone.dim)
        self.acoustic_transformer = FlowMatchingAudioTransformer(cfg.flow, cfg.codes)
        self.audio_tokenizer = VoxtralCodec(cfg.codec, with_encoder)

    def embed_prompt(self, ids: torch.Tensor, voice_rows: torch.Tensor) -> torch.Tensor:
        """ids [L] → embeddings [L, dim] with the `[AUDIO]` positions overwritten, in order, by ``voice_rows``."""
        embeds = self.backbone.tok_embeddings(ids)
        is_audio = ids == self.cfg.codes.audio_token_id
        n = int(is_audio.sum())
        if n != voice_rows.shape[0]:
            raise ValueError(
                f"prompt has {n} [AUDIO] placeholders but the voice has {voice_rows.shape[0]} rows"
            )
        embeds[is_audio] = voice_rows.to(embeds.dtype)
        return embeds

    def voice_rows_from_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """Clone a voice: waveform [N] at 24 kHz → ceil(N/1920) + 1 voice rows (frames + end-of-audio)."""
        codes = self.audio_tokenizer.encode(waveform[None])[0]  # [T, 37]
        eoa = torch.zeros_like(codes[:1])  # raw [END_AUDIO, EMPTY…]: no +2 on this frame (spec §6.5, §9 D8)
        eoa[0, 0] = 1
        return self.audio_embeddings(torch.cat((codes, eoa), dim=0))
