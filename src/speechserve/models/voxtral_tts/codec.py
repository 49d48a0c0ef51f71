"""The Voxtral codec (`audio_tokenizer.*`): codes ↔ 292-d latent ↔ 24 kHz PCM.

Decoder (always present): conv → 4 × [windowed transformer, transposed-conv up-sampling] → output conv →
unpatch, 1920 samples per 80 ms frame. Encoder (spec §6.5; weights absent from the public release):
patchify → input conv → 4 × [transformer, strided conv] → quantize (nearest semantic centroid, FSQ of tanh).
"""

from __future__ import annotations

import torch
from torch import nn

from speechserve.models.voxtral_tts.codec_layers import CausalConv1d, CausalConvTranspose1d, CodecTransformer
from speechserve.models.voxtral_tts.config import N_AUDIO_SPECIAL_TOKENS, CodecConfig


class SemanticCodebook(nn.Module):
    """The 8192 semantic centroids (computed at load from `embedding_sum / clamp(cluster_usage, 1e-5)`)."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("centroids", torch.zeros(size, dim), persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, dim] → nearest-centroid indices [B, T] (Euclidean)."""
        c = self.centroids.float()
        dist = torch.cdist(x.float().reshape(-1, c.shape[1]), c)
        return dist.argmin(dim=-1).view(x.shape[:2])


class VoxtralCodec(nn.Module):
    """Codec decoder, quantizer, and (when built with ``with_encoder``) the encoder."""

    def __init__(self, cfg: CodecConfig, with_encoder: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.has_encoder = with_encoder
        layer = {
            "dim": cfg.dim, "hidden_dim": cfg.hidden_dim, "n_heads": cfg.n_heads, "head_dim": cfg.head_dim,
            "norm_eps": cfg.norm_eps, "qk_eps": cfg.qk_norm_eps,
        }  # fmt: skip
        self.semantic_codebook = SemanticCodebook(cfg.semantic_codebook_size, cfg.semantic_dim)
        kernels, strides = cfg.decoder_convs_kernels, cfg.decoder_convs_strides
        blocks: list[nn.Module] = [CausalConv1d(cfg.latent_dim, cfg.dim, kernels[0], strides[0], "replicate")]
        for i, (n_layers, window) in enumerate(
            zip(cfg.decoder_transformer_lengths, cfg.decoder_windows(), strict=True)
        ):
            blocks.append(CodecTransformer(n_layers, window=window, **layer))
            if i + 1 < len(kernels) and (kernels[i + 1] != 1 or strides[i + 1] != 1):
                blocks.append(CausalConvTranspose1d(cfg.dim, cfg.dim, kernels[i + 1], strides[i + 1]))
        self.decoder_blocks = nn.ModuleList(blocks)
        self.output_proj = CausalConv1d(cfg.dim, cfg.patch_size, cfg.patch_proj_kernel_size, 1, "reflect")
        if with_encoder:
            self.input_proj = CausalConv1d(cfg.patch_size, cfg.dim, cfg.patch_proj_kernel_size, 1, "reflect")
            enc: list[nn.Module] = []
            n = len(cfg.encoder_transformer_lengths)
            for i, (n_layers, window) in enumerate(
                zip(cfg.encoder_transformer_lengths, cfg.encoder_windows(), strict=True)
            ):
                enc.append(CodecTransformer(n_layers, window=window, **layer))
                k, s, last = cfg.encoder_convs_kernels[i], cfg.encoder_convs_strides[i], i == n - 1
                if k != 1 or s != 1 or last:
                    enc.append(CausalConv1d(cfg.dim, cfg.latent_dim if last else cfg.dim, k, s, "replicate"))
            self.encoder_blocks = nn.ModuleList(enc)

    # ---- decode -------------------------------------------------------------------------------------------
    def latent_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T, 37] in +2 space → latent [B, 292, T] (semantic centroids, then 2·level/20 − 1)."""
        raw = codes - N_AUDIO_SPECIAL_TOKENS
        semantic = self.semantic_codebook.centroids[raw[..., 0]]  # [B, T, 256]
        levels = self.cfg.acoustic_codebook_size - 1
        acoustic = 2 * raw[..., 1:].to(semantic.dtype) / levels - 1  # [B, T, 36]
        return torch.cat((semantic, acoustic), dim=-1).transpose(1, 2)

    def decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, 292, T] → PCM [B, 1920·T]."""
        x = latent.to(self.output_proj.conv.weight.dtype)
        for block in self.decoder_blocks:
            x = block(x.transpose(1, 2)).transpose(1, 2) if isinstance(block, CodecTransformer) else block(x)
        patches = self.output_proj(x)  # [B, 240, 8T]
        return patches.transpose(1, 2).reshape(patches.shape[0], -1)  # sample n = t·240 + c

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T, 37] (+2 space, no END frames) → PCM [B, 1920·T]."""
        return self.decode_latent(self.latent_from_codes(codes))

    # ---- encode -------------------------------------------------------------------------------------------
    def encode(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform [B, N] at 24 kHz → codes [B, ceil(N/1920), 37] in +2 space. Needs encoder weights."""
        if not self.has_encoder:
            raise RuntimeError("this codec was built without an encoder")
        p = self.cfg.patch_size
        pad = (-waveform.shape[-1]) % p
        x = (
            nn.functional.pad(waveform, (0, pad)).view(waveform.shape[0], -1, p).transpose(1, 2)
        )  # [B, 240, N/240]
        x = self.input_proj(x.to(self.output_proj.conv.weight.dtype))
        for block in self.encoder_blocks:
            x = block(x.transpose(1, 2)).transpose(1, 2) if isinstance(block, CodecTransformer) else block(x)
        latent = x.transpose(1, 2)  # [B, T, 292]
        semantic = self.semantic_codebook.encode(latent[..., : self.cfg.semantic_dim])
        levels = self.cfg.acoustic_codebook_size - 1
        acoustic = torch.round(
            (torch.tanh(latent[..., self.cfg.semantic_dim :].float()) + 1) / 2 * levels
        ).long()
        return torch.cat((semantic[..., None], acoustic), dim=-1) + N_AUDIO_SPECIAL_TOKENS
