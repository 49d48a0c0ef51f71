"""The Descript Audio Codec (DAC, 44.1 kHz) that Dia speaks: residual VQ, decoder and encoder (spec §10).

Parameter names follow transformers' ``DacModel`` (``decoder.block.{i}.res_unit{j}.conv1`` …); the loader maps
the descript ``weights.pth`` names onto them and folds weight norm at load, so every conv here is plain.

codes [B, 9, T] → ``from_codes`` → latent [B, 1024, T] → ``decode`` → waveform [B, T·512] (tanh, 44.1 kHz).
waveform → ``encode`` → codes (voice-clone prompts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechserve.models.dia.config import DacConfig

RESIDUAL_DILATIONS = (1, 3, 9)
RESIDUAL_KERNEL = 7


class Snake1d(nn.Module):
    """x + sin²(αx)/α, α per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class DacResidualUnit(nn.Module):
    """Snake → dilated conv k7 → Snake → conv k1, plus the input (length-preserving)."""

    def __init__(self, dim: int, dilation: int) -> None:
        super().__init__()
        pad = (RESIDUAL_KERNEL - 1) * dilation // 2
        self.snake1 = Snake1d(dim)
        self.conv1 = nn.Conv1d(dim, dim, RESIDUAL_KERNEL, dilation=dilation, padding=pad)
        self.snake2 = Snake1d(dim)
        self.conv2 = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.snake2(self.conv1(self.snake1(x))))
        crop = (x.shape[-1] - y.shape[-1]) // 2
        return (x[..., crop : x.shape[-1] - crop] if crop > 0 else x) + y


def _residual_units(module: nn.Module, dim: int) -> None:
    for j, dilation in enumerate(RESIDUAL_DILATIONS, start=1):
        setattr(module, f"res_unit{j}", DacResidualUnit(dim, dilation))


class DacDecoderBlock(nn.Module):
    """Snake → transposed conv (×stride) → three residual units."""

    def __init__(self, in_dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.snake1 = Snake1d(in_dim)
        self.conv_t1 = nn.ConvTranspose1d(in_dim, out_dim, 2 * stride, stride, padding=math.ceil(stride / 2))
        _residual_units(self, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_t1(self.snake1(x))
        return self.res_unit3(self.res_unit2(self.res_unit1(x)))


class DacEncoderBlock(nn.Module):
    """Three residual units → Snake → strided conv (÷stride, channels ×2)."""

    def __init__(self, dim: int, stride: int) -> None:
        super().__init__()
        _residual_units(self, dim // 2)
        self.snake1 = Snake1d(dim // 2)
        self.conv1 = nn.Conv1d(dim // 2, dim, 2 * stride, stride, padding=math.ceil(stride / 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_unit3(self.res_unit2(self.res_unit1(x)))
        return self.conv1(self.snake1(x))


class DacDecoder(nn.Module):
    """latent [B, latent, T] → waveform [B, 1, T·hop]."""

    def __init__(self, cfg: DacConfig) -> None:
        super().__init__()
        dims = [cfg.decoder_dim // 2**i for i in range(len(cfg.decoder_rates) + 1)]
        self.conv1 = nn.Conv1d(cfg.latent_dim, dims[0], 7, padding=3)
        self.block = nn.ModuleList(
            DacDecoderBlock(dims[i], dims[i + 1], s) for i, s in enumerate(cfg.decoder_rates)
        )
        self.snake1 = Snake1d(dims[-1])
        self.conv2 = nn.Conv1d(dims[-1], 1, 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv1(z)
        for block in self.block:
            x = block(x)
        return torch.tanh(self.conv2(self.snake1(x)))

    def context_frames(self) -> int:
        """Code frames on each side that reach one output sample (receptive-field radius, rounded up)."""
        radius = 3  # conv2 (k7) at the output rate
        for block in reversed(self.block):
            radius += sum(3 * d for d in RESIDUAL_DILATIONS)  # three k7 convs at this block's rate
            stride, pad = block.conv_t1.stride[0], block.conv_t1.padding[0]
            radius = math.ceil((radius + pad) / stride) + 1  # the transposed conv's input neighbourhood
        return radius + 3  # conv1 (k7) at the frame rate


class DacEncoder(nn.Module):
    """waveform [B, 1, N·hop] → latent [B, latent, N]."""

    def __init__(self, cfg: DacConfig) -> None:
        super().__init__()
        d = cfg.encoder_dim
        self.conv1 = nn.Conv1d(1, d, 7, padding=3)
        blocks = []
        for stride in cfg.encoder_rates:
            d *= 2
            blocks.append(DacEncoderBlock(d, stride))
        self.block = nn.ModuleList(blocks)
        self.snake1 = Snake1d(d)
        self.conv2 = nn.Conv1d(d, cfg.latent_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for block in self.block:
            x = block(x)
        return self.conv2(self.snake1(x))


class DacVectorQuantize(nn.Module):
    """One codebook of the residual VQ, looked up in a low-dimensional (8-d) space."""

    def __init__(self, cfg: DacConfig) -> None:
        super().__init__()
        self.in_proj = nn.Conv1d(cfg.latent_dim, cfg.codebook_dim, 1)
        self.out_proj = nn.Conv1d(cfg.codebook_dim, cfg.latent_dim, 1)
        self.codebook = nn.Embedding(cfg.codebook_size, cfg.codebook_dim)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] → [B, latent, T]."""
        return self.out_proj(self.codebook(codes).transpose(1, 2))

    def quantize(self, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codebook entry by cosine similarity of the projected residual [B, latent, T] → codes
        [B, T] and their contribution [B, latent, T]."""
        projected = F.normalize(self.in_proj(residual).transpose(1, 2), dim=-1)  # [B, T, d]
        book = F.normalize(self.codebook.weight, dim=-1)
        dist = (
            projected.pow(2).sum(-1, keepdim=True)
            - 2 * projected @ book.t()
            + book.pow(2).sum(-1)[None, None]
        )
        codes = dist.argmin(dim=-1)
        return codes, self.decode(codes)


class DacResidualVectorQuantize(nn.Module):
    def __init__(self, cfg: DacConfig) -> None:
        super().__init__()
        self.quantizers = nn.ModuleList(DacVectorQuantize(cfg) for _ in range(cfg.n_codebooks))

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, n_codebooks, T] → latent [B, latent, T] (the sum of every codebook's projection)."""
        z = self.quantizers[0].decode(codes[:, 0])
        for k in range(1, codes.shape[1]):
            z = z + self.quantizers[k].decode(codes[:, k])
        return z

    def encode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, latent, T] → codes [B, n_codebooks, T] (each codebook quantizes what is left)."""
        residual, codes = latent, []
        for quantizer in self.quantizers:
            c, contribution = quantizer.quantize(residual)
            residual = residual - contribution
            codes.append(c)
        return torch.stack(codes, dim=1)


class DAC(nn.Module):
    """Codes ↔ 44.1 kHz mono audio. Run in fp32 (as nari-labs/dia and descript do)."""

    def __init__(self, cfg: DacConfig, with_encoder: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        if with_encoder:
            self.encoder = DacEncoder(cfg)
        self.quantizer = DacResidualVectorQuantize(cfg)
        self.decoder = DacDecoder(cfg)

    @property
    def has_encoder(self) -> bool:
        return hasattr(self, "encoder")

    @property
    def device(self) -> torch.device:
        return self.decoder.conv2.weight.device

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, n_codebooks, T] (ints 0..codebook_size−1) → waveform [B, T·hop] in [−1, 1]."""
        return self.decoder(self.quantizer.from_codes(codes))[:, 0]

    def encode(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform [B, N] at the codec's rate → codes [B, n_codebooks, ceil(N / hop)] (right-padded with 0)."""
        hop = self.cfg.hop_length
        pad = -waveform.shape[-1] % hop
        x = F.pad(waveform, (0, pad))[:, None]
        return self.quantizer.encode(self.encoder(x))
