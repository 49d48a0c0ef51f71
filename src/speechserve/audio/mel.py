"""The Whisper/Voxtral log-mel front end and its 30-second chunking (the Voxtral ASR spec, §3.2-3.3).

Exact math: periodic Hann window of 400 samples, 400-point STFT every 160 samples with centred reflect
padding, power spectrum with the last frame dropped, a Slaney-scale / Slaney-normalised bank of 128 filters
over 0-8 kHz, log10 with a 1e-10 floor, a lower clamp at (max − 8) — the max taken over the whole padded
audio, or a fixed ``global_log_mel_max`` when the checkpoint has one — and finally (x + 4) / 4.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

SAMPLE_RATE = 16_000  # Hz
N_FFT = 400  # samples per STFT window = 25 ms
HOP_LENGTH = 160  # samples between frames = 10 ms → 100 mel frames per second
N_MELS = 128
CHUNK_LENGTH = 30  # seconds of audio per encoder chunk
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480 000 samples per chunk
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames per chunk (= 2 × max_source_positions)
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0  # log10 units kept below the max (80 dB)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear 3f/200 below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / log_step, 3.0 * f / 200.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(log_step * (m - 15.0)), 200.0 * m / 3.0)


@lru_cache(maxsize=8)
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney filter bank [n_fft/2 + 1, n_mels] in float64 over 0 … sample_rate/2 (read-only, cached)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))  # f_0…f_{n+1}
    fft_freqs = np.linspace(0.0, sample_rate // 2, n_fft // 2 + 1)
    slopes = edges[None, :] - fft_freqs[:, None]  # [n_freq, n_mels + 2]: f_k − f
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]  # (f − f_k) / (f_{k+1} − f_k)
    up = slopes[:, 2:] / widths[1:]  # (f_{k+2} − f) / (f_{k+2} − f_{k+1})
    bank = np.maximum(0.0, np.minimum(down, up)) * (2.0 / (edges[2:] - edges[:-2]))
    bank.setflags(write=False)
    return bank


def log_mel_spectrogram(
    audio: torch.Tensor,
    n_mels: int = N_MELS,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    sample_rate: int = SAMPLE_RATE,
    global_log_mel_max: float | None = None,
) -> torch.Tensor:
    """audio [N] float (16 kHz) → normalised log-mel [n_mels, N // hop_length], float32.

    The clamp uses the max over this whole input (so pass the padded audio of one request), unless the
    checkpoint fixes ``global_log_mel_max``.
    """
    if audio.dim() != 1:
        raise ValueError(f"expected mono audio of shape [N], got {tuple(audio.shape)}")
    audio = audio.float()
    window = torch.hann_window(n_fft, device=audio.device)  # periodic by default
    stft = torch.stft(
        audio, n_fft, hop_length, window=window, center=True, pad_mode="reflect", return_complex=True
    )
    power = stft[..., :-1].abs() ** 2  # [n_freq, T]: last frame dropped
    bank = torch.tensor(mel_filters(n_mels, n_fft, sample_rate), dtype=torch.float32, device=audio.device)
    log_spec = torch.clamp(bank.T @ power, min=LOG_FLOOR).log10()
    top = log_spec.max() if global_log_mel_max is None else torch.tensor(global_log_mel_max)
    log_spec = torch.maximum(log_spec, top.to(log_spec) - DYNAMIC_RANGE)
    return (log_spec + 4.0) / 4.0


def pad_to_chunks(audio: np.ndarray, chunk_samples: int = N_SAMPLES) -> np.ndarray:
    """Right-pad with zeros to the next multiple of ``chunk_samples`` (at least one chunk)."""
    n = max(1, math.ceil(len(audio) / chunk_samples)) * chunk_samples
    return np.pad(np.asarray(audio, dtype=np.float32), (0, n - len(audio)))


def chunked_log_mel(
    padded_audio: torch.Tensor,
    chunk_frames: int = N_FRAMES,
    n_mels: int = N_MELS,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    sample_rate: int = SAMPLE_RATE,
    global_log_mel_max: float | None = None,
) -> torch.Tensor:
    """Padded audio [C·chunk_frames·hop] → encoder input [C, n_mels, chunk_frames].

    One mel over the whole padded audio (one clamp max per request, as the reference), then split in time.
    """
    if padded_audio.shape[-1] % (chunk_frames * hop_length):
        raise ValueError(
            f"audio of {padded_audio.shape[-1]} samples is not a multiple of the "
            f"{chunk_frames * hop_length}-sample chunk; pad it with pad_to_chunks first"
        )
    mel = log_mel_spectrogram(padded_audio, n_mels, n_fft, hop_length, sample_rate, global_log_mel_max)
    return mel.view(n_mels, -1, chunk_frames).transpose(0, 1).contiguous()
