"""The log-mel front end: filter bank, framing, clamping, chunking (spec §3.2-3.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mistral_common.audio import mel_filter_bank

from speechserve.audio.mel import (
    N_FRAMES,
    N_SAMPLES,
    chunked_log_mel,
    log_mel_spectrogram,
    mel_filters,
    pad_to_chunks,
)


def test_filter_bank_matches_mistral_common() -> None:
    ours = mel_filters(128, 400, 16000)
    assert ours.shape == (201, 128)
    assert np.abs(ours - mel_filter_bank(201, 128, 0.0, 8000.0, 16000)).max() < 1e-12


@pytest.mark.parametrize("n", [400, 1599, 1600, 55015])
def test_frame_count_drops_the_last_frame(n: int) -> None:
    assert log_mel_spectrogram(torch.randn(n)).shape == (128, n // 160)


def test_silence_is_the_floor_and_the_clamp_is_relative_to_the_max() -> None:
    assert torch.all(log_mel_spectrogram(torch.zeros(16000)) == (-10 + 4) / 4)
    x = torch.zeros(32000)
    x[:16000] = torch.sin(torch.arange(16000) * 2 * torch.pi * 440 / 16000)
    mel = log_mel_spectrogram(x)
    top = mel.max()
    assert torch.isclose(mel.min(), top - 2.0)  # 8 log10 units below the max, after (x + 4) / 4
    fixed = log_mel_spectrogram(x, global_log_mel_max=1.5)
    assert torch.isclose(fixed.min(), torch.tensor((1.5 - 8 + 4) / 4))


def test_a_tone_lights_its_mel_bin() -> None:
    t = torch.arange(16000) / 16000
    for hz in (320.0, 1000.0, 4000.0):  # on FFT bin centres (multiples of 40 Hz)
        mel = log_mel_spectrogram(torch.sin(2 * torch.pi * hz * t))
        bank = mel_filters()
        expected = int(np.argmax(bank[round(hz / 40)]))  # FFT bin spacing 16000 / 400 = 40 Hz
        assert abs(int(mel.mean(dim=1).argmax()) - expected) <= 1


def test_chunking_pads_to_30_s_and_splits_in_time() -> None:
    audio = np.random.default_rng(0).standard_normal(N_SAMPLES + 123).astype(np.float32) * 0.1
    padded = pad_to_chunks(audio)
    assert len(padded) == 2 * N_SAMPLES and np.all(padded[len(audio) :] == 0)
    chunks = chunked_log_mel(torch.from_numpy(padded))
    assert chunks.shape == (2, 128, N_FRAMES)
    whole = log_mel_spectrogram(torch.from_numpy(padded))
    assert torch.equal(chunks[1], whole[:, N_FRAMES:])
    assert len(pad_to_chunks(np.zeros(0, np.float32))) == N_SAMPLES
    with pytest.raises(ValueError, match="pad it"):
        chunked_log_mel(torch.zeros(N_SAMPLES + 1))
