"""The streaming log-mel front end: samples arrive in pieces of any size, mel frames leave 8 at a time (one
decoder position = 80 ms), exactly on the offline grid (spec §3.2-3.3, golden README "Streaming run").

Offline, mistral_common left-pads the audio with silence and the mel runs with ``center=True``: frame ``t``
covers samples ``[hop·t − n_fft/2, hop·t + n_fft/2)`` of the padded stream, and the reflect padding in front
of the silence is silence too. So a frame is computable as soon as its last sample has arrived, with no
reflect padding at all: the framer keeps ``n_fft/2`` zeros in front of the stream and cuts frame ``t`` at
``[hop·t, hop·t + n_fft)``. Only the samples of frames not yet computed are kept.

This is transformers' streaming framing, equal to offline. vLLM's online buffer recomputes each step's mel on
a look-back window instead, which puts its frames 40 samples (2.5 ms) earlier (spec §9.3); we keep the grid
offline transcription uses, so a stream and the same file decode to the same ids.
"""

from __future__ import annotations

import numpy as np
import torch

from speechserve.audio.mel import DYNAMIC_RANGE, LOG_FLOOR, mel_filters
from speechserve.models.voxtral_realtime.config import AudioEncodingConfig


def log_mel_frames(segment: torch.Tensor, audio: AudioEncodingConfig) -> torch.Tensor:
    """samples [hop·(n−1) + n_fft] → normalised log-mel [n_mels, n] (float32), one frame per hop, no padding."""
    window = torch.hann_window(audio.window_size, device=segment.device)  # periodic, as the offline front end
    stft = torch.stft(
        segment.float(), audio.window_size, audio.hop_length, window=window, center=False, return_complex=True
    )
    bank = mel_filters(audio.num_mel_bins, audio.window_size, audio.sampling_rate)
    bank_t = torch.tensor(bank, dtype=torch.float32, device=segment.device)
    log_spec = torch.clamp(bank_t.T @ stft.abs() ** 2, min=LOG_FLOOR).log10()
    log_spec = torch.clamp(log_spec, min=audio.global_log_mel_max - DYNAMIC_RANGE)
    return (log_spec + 4.0) / 4.0


class MelFramer:
    """One stream's samples → mel frames, a whole number of tokens at a time. Lifetime: one stream."""

    def __init__(self, audio: AudioEncodingConfig, left_pad_samples: int, frames_per_token: int) -> None:
        self.audio, self.frames_per_token = audio, frames_per_token
        self._pieces: list[np.ndarray] = [np.zeros(audio.window_size // 2 + left_pad_samples, np.float32)]
        self._kept = len(self._pieces[0])  # samples held, starting at hop · n_frames (framer coordinates)
        self.n_frames = 0
        """Mel frames handed out so far."""
        self.n_samples = 0
        """Samples pushed (the left padding excluded)."""

    def push(self, samples: np.ndarray) -> None:
        """Append mono float32 samples at the model's rate."""
        samples = np.array(samples, dtype=np.float32).reshape(-1)  # a copy: the caller may reuse its buffer
        if len(samples):
            self._pieces.append(samples)
            self._kept += len(samples)
            self.n_samples += len(samples)

    @property
    def held_samples(self) -> int:
        """Samples kept for frames not computed yet (bounded by one token plus a window once streaming)."""
        return self._kept

    @property
    def ready_tokens(self) -> int:
        """Whole tokens (``frames_per_token`` frames each) computable from the samples received."""
        a = self.audio
        if self._kept < a.window_size:
            return 0
        return (1 + (self._kept - a.window_size) // a.hop_length) // self.frames_per_token

    def samples_needed(self, n_tokens: int) -> int:
        """Samples still to push before ``n_tokens`` more tokens are ready (0: they are)."""
        a = self.audio
        need = a.hop_length * (n_tokens * self.frames_per_token - 1) + a.window_size
        return max(0, need - self._kept)

    def take(self, n_tokens: int, device: torch.device) -> torch.Tensor:
        """The next ``n_tokens`` tokens' mel frames [n_mels, n_tokens · frames_per_token] (float32)."""
        if n_tokens > self.ready_tokens:
            raise ValueError(f"{n_tokens} tokens asked, {self.ready_tokens} ready")
        a, n = self.audio, n_tokens * self.frames_per_token
        buf = np.concatenate(self._pieces) if len(self._pieces) > 1 else self._pieces[0]
        segment = torch.from_numpy(buf[: a.hop_length * (n - 1) + a.window_size]).to(device)
        mel = log_mel_frames(segment, a)
        rest = buf[a.hop_length * n :]
        self._pieces, self._kept = [rest], len(rest)
        self.n_frames += n
        return mel
