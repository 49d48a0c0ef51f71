"""The text delay is chosen per stream: milliseconds or an OpenAI-style level; it sets the prompt, the
closing silence and the time conditioning together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechserve.errors import InvalidRequest
from speechserve.models.voxtral_realtime.delay import DELAY_LEVELS, SUPPORTED_DELAYS_MS, resolve_delay


def test_supported_delays() -> None:
    assert (*range(80, 1201, 80), 2400) == SUPPORTED_DELAYS_MS
    assert resolve_delay(None, 480) == 480
    assert resolve_delay(1200, 480) == 1200 and resolve_delay("160", 480) == 160
    assert {name: resolve_delay(name, 480) for name in DELAY_LEVELS} == DELAY_LEVELS
    assert DELAY_LEVELS["medium"] == 480 and set(DELAY_LEVELS.values()) <= set(SUPPORTED_DELAYS_MS)
    assert list(DELAY_LEVELS) == ["minimal", "low", "medium", "high", "xhigh"]
    assert resolve_delay("XHigh", 480) == 2400


@pytest.mark.parametrize("bad", [0, 40, 100, 1280, 2320, 2480, -80, "fast", True, 480.5])
def test_unsupported_delays_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest) as err:
        resolve_delay(bad, 480)
    assert err.value.param == "delay"


@pytest.mark.parametrize(("delay", "n_delay"), [(80, 1), ("low", 3), (480, 6), (1200, 15), ("xhigh", 30)])
def test_delay_sets_prompt_padding_and_conditioning(realtime_pipe, delay, n_delay: int) -> None:  # type: ignore[no-untyped-def]
    prompt = realtime_pipe.stream_prompt(delay)
    assert prompt.n_delay == n_delay and prompt.ids == (1, *[32] * (32 + n_delay))
    assert prompt.left_pad_samples == 32 * 1280 and prompt.right_pad_samples == (n_delay + 11) * 1280
    session = realtime_pipe.session(delay)
    expected = realtime_pipe.model.decoder.ada_scales(n_delay)
    assert torch.equal(session.state.ada, expected)
    # the first id needs the prompt's audio: (delay + 1) tokens of 80 ms, plus the last frame's 2.5 ms
    need = (n_delay + 1) * 1280 + 40
    session.push(np.zeros(need - 1, np.float32))
    assert list(session.steps()) == []
    session.push(np.zeros(1, np.float32))
    assert len(list(session.steps())) == 1


def test_each_stream_keeps_its_own_delay(realtime_pipe, en_samples) -> None:
    """Streams of different delays decode differently, each exactly like its own whole-file transcription."""
    results = {}
    for delay in (80, 480, 2400):
        whole = realtime_pipe.transcribe((en_samples, 16_000), delay=delay)
        session = realtime_pipe.session(delay)
        for start in range(0, len(en_samples), 4000):
            session.push(en_samples[start : start + 4000])
        session.end()
        ids = [s.id for s in session.steps()]
        assert ids == whole.segments[0].tokens
        results[delay] = ids
    n_tokens = -(-len(en_samples) // 1280)
    assert all(len(ids) == n_tokens + 10 for ids in results.values())  # the padding grows with the prompt
    assert results[80] != results[480] != results[2400]


def test_t_cond_is_the_delay_sinusoid(realtime_pipe) -> None:
    t = realtime_pipe.model.t_cond(6)
    omega = torch.exp(-np.log(1e4) * torch.arange(8) / 8)
    assert torch.allclose(t, torch.cat([(6 * omega).cos(), (6 * omega).sin()]), atol=1e-6)
