"""True streaming: audio in pieces of any size gives exactly the offline ids, one id per 80 ms of audio, with
per-stream memory fixed by the attention windows however long the stream runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import speechserve
from speechserve.models.voxtral_realtime.cache import StreamCache
from speechserve.models.voxtral_realtime.window import RingKV


def _offline_ids(realtime_case: Path, utt: str) -> list[int]:
    return load_file(str(realtime_case / "expected.safetensors"))[f"{utt}.offline_full_ids"].tolist()


def _piecewise_ids(pipe, samples: np.ndarray, rng: np.random.Generator) -> list[int]:  # type: ignore[no-untyped-def]
    session, ids, start = pipe.session(), [], 0
    while start < len(samples):
        n = int(rng.integers(16, 32_001))  # 1 ms … 2 s at 16 kHz
        session.push(samples[start : start + n])
        start += n
        ids += [s.id for s in session.steps()]
    session.end()
    ids += [s.id for s in session.steps()]
    assert session.finish_reason == "stop"
    return ids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_pieces_give_the_offline_ids(
    realtime_pipe, en_samples, realtime_case: Path, seed: int
) -> None:
    """1 ms … 2 s pieces → exactly the reference's offline ids (transformers ``generate`` on the whole file)."""
    assert _piecewise_ids(realtime_pipe, en_samples, np.random.default_rng(seed)) == _offline_ids(
        realtime_case, "en"
    )


def test_transcribe_is_the_offline_decode(realtime_pipe, en_samples, realtime_case: Path) -> None:
    result = realtime_pipe.transcribe((en_samples, 16_000))
    assert result.segments[0].tokens == _offline_ids(realtime_case, "en")
    assert result.usage.prompt_tokens == 39 and result.usage.completion_tokens == 53


def test_one_id_per_80_ms(realtime_pipe) -> None:
    """The first id needs the prompt's audio, (delay + 1) × 1280 + 40 samples (9000 at 480 ms); every further
    id exactly 1280 more samples (80 ms), and not one sample less."""
    session = realtime_pipe.session()
    noise = np.random.default_rng(0).standard_normal(9000 + 5 * 1280).astype(np.float32) * 0.1
    session.push(noise[:8999])
    assert list(session.steps()) == []
    fed = 8999
    for _ in range(6):
        session.push(noise[fed : fed + 1])
        assert len(list(session.steps())) == 1
        session.push(noise[fed + 1 : fed + 1280])
        assert list(session.steps()) == []
        fed += 1280
    assert len(session.ids) == 6


def _big_cache(cache: StreamCache, positions: int) -> StreamCache:
    """The same cache with rings that never wrap (capacity ≥ the stream)."""

    def grow(rings: list[RingKV]) -> list[RingKV]:
        r = rings[0]
        return [RingKV(1, r.k.shape[1], positions, r.k.shape[3], r.k.dtype, r.k.device) for _ in rings]

    return StreamCache([t.clone() for t in cache.conv_tails], grow(cache.encoder), grow(cache.decoder))


def test_ring_buffers_equal_unbounded_caches(realtime_pipe, realtime_case: Path) -> None:
    """A 16 s stream wraps both rings (encoder 159 rows, decoder 111) many times: same logits as caches that
    keep every position."""
    pieces = [realtime_pipe.load_audio(realtime_case / f"{u}.wav") for u in ("en", "fr", "en", "fr", "en")]
    audio = np.concatenate(pieces)
    runs, fed = [], []
    for unbounded in (False, True):
        session = realtime_pipe.session()
        if unbounded:
            session.runner.cache = _big_cache(session.runner.cache, 8 * len(audio) // 1280 + 4096)
        session.push(audio)
        session.end()
        runs.append(list(session.steps()))
        fed.append((session.state.n_fed, session.state.n_encoded * 4, session.runner.cache))
    bounded, full = runs
    (n_dec, n_enc, ring), (_, _, unbounded_cache) = fed
    assert n_dec > 2 * ring.decoder[0].capacity and n_enc > 5 * ring.encoder[0].capacity  # wrapped
    assert unbounded_cache.decoder[0].capacity > n_dec and unbounded_cache.encoder[0].capacity > n_enc
    assert [s.id for s in bounded] == [s.id for s in full]
    worst = max((a.logits - b.logits).abs().max().item() for a, b in zip(bounded, full, strict=True))
    assert worst < 1e-4


def test_memory_is_bounded_by_the_windows(tiny_realtime_checkpoint: Path) -> None:
    """A 60 s synthetic stream in 100 ms pieces: the device state keeps the same tensors and shapes from the
    first step to the last, and the host keeps less than one token of audio."""
    pipe = speechserve.load(tiny_realtime_checkpoint, device="cpu")
    session = pipe.session()
    tensors = session.runner.cache.tensors()
    shapes = [(t.shape, t.data_ptr()) for t in tensors]
    nbytes = session.runner.cache.nbytes
    t = np.arange(60 * 16_000) / 16_000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.5 * np.sin(t)))).astype(np.float32)
    n_ids = 0
    for start in range(0, len(audio), 1600):
        session.push(audio[start : start + 1600])
        n_ids += len(list(session.steps()))
        assert [(x.shape, x.data_ptr()) for x in session.runner.cache.tensors()] == shapes
        if session.state.n_fed:  # past the prompt: less than one token of audio is waiting
            assert session.state.framer.held_samples < 1280 + 400 and len(session.state.pending) == 0
    session.end()
    n_ids += len(list(session.steps()))
    # one id per 80 ms position after the prompt (left pad + audio + closing silence), the last one unfed
    assert n_ids == 32 + len(audio) // 1280 + 17 - 39
    assert session.runner.cache.nbytes == nbytes
    assert all(torch.isfinite(t).all() for t in session.runner.cache.tensors())
