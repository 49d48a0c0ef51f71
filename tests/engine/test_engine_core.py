"""Continuous batching is invisible in the output: every request gets exactly the audio it would get alone
(same seeds → same codes, audio within 1e-4), whoever joins, leaves or is cancelled around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechserve import SynthesisOptions
from speechserve.engine import EngineConfig, EngineCore, SpeechRequest
from speechserve.engine.kv_slots import SlotPool, slot_bytes, slots_for_budget
from speechserve.engine.offline import ListSink, generate_batch
from speechserve.errors import InvalidRequest

TEXTS = [
    ("Hello there, my friend.", "casual_male"),
    ("A much longer sentence that keeps going for quite a while.", "fr_female"),
    ("Short.", "cheerful_female"),
    ("Bonjour à tous, comment allez-vous ?", "fr_female"),
    ("Numbers like 42 and 1999 are read aloud.", "casual_male"),
]


def _reference(tts, req: SpeechRequest) -> tuple[torch.Tensor, np.ndarray]:
    """One request alone, through the reference single-sequence loop and a one-shot codec decode."""
    frames = [f.codes for f in tts.frames(req.text, req.voice, req.options) if not f.is_end]
    codes = torch.stack(frames)
    return codes, tts.model.audio_tokenizer.decode(codes[None])[0].numpy()


def _submit(core: EngineCore, req: SpeechRequest):
    sink = ListSink()
    seq = core.make_sequence(req, sink)
    core.add(seq)
    return seq, sink


def _audio(sink: ListSink) -> np.ndarray:
    return np.concatenate([c.samples for c in sink.chunks])


def test_batched_equals_alone_with_joins_leaves_and_cancel(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=4, prefill_chunk_tokens=64))
    reqs = [
        SpeechRequest(t, v, options=SynthesisOptions(seed=10 + i, max_frames=8 + 6 * i))
        for i, (t, v) in enumerate(TEXTS)
    ]
    running = [_submit(core, reqs[0]), _submit(core, reqs[1])]
    for _ in range(3):
        core.step()
    running.append(_submit(core, reqs[2]))  # joins mid-batch (its prompt prefills in chunks of 64)
    victim = _submit(core, reqs[3])
    for _ in range(4):
        core.step()
    victim[1].cancel()  # cancelled mid-generation
    running.append(_submit(core, reqs[4]))  # waits for a free slot (max_batch 4), then joins
    n_steps = 0
    while core.has_work:
        core.step()
        n_steps += 1
        assert core.n_running <= 4
    assert n_steps < 60
    for (seq, sink), req in zip(running, [reqs[0], reqs[1], reqs[2], reqs[4]], strict=True):
        codes, audio = _reference(tiny_tts, req)
        assert torch.equal(torch.stack(seq.frames), codes), req.text
        got = _audio(sink)
        assert got.shape == audio.shape and np.abs(got - audio).max() <= 1e-4
        assert sink.done and sink.error is None and sink.chunks[-1].is_last
        assert sink.usage.output_tokens == codes.shape[0] and sink.usage.input_tokens == seq.prompt_len
    seq, sink = victim
    assert seq.finish_reason == "cancelled" and sink.done
    assert len(seq.frames) < reqs[3].options.max_frames
    assert core.scheduler.slots.n_free == 4  # every slot came back


def test_generate_batch_matches_alone(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=8))
    reqs = [
        SpeechRequest(t, v, options=SynthesisOptions(seed=i, max_frames=12)) for i, (t, v) in enumerate(TEXTS)
    ]
    for req, (audio, usage) in zip(reqs, generate_batch(core, reqs), strict=True):
        _, want = _reference(tiny_tts, req)
        assert np.abs(audio.samples - want).max() <= 1e-4 and usage.output_tokens == 12


def test_first_chunk_is_one_frame_and_chunks_grow(tiny_tts) -> None:
    core = EngineCore(
        tiny_tts, EngineConfig(max_batch=2, low_slack_seconds=-1e9)
    )  # never "behind": pure growth
    _, sink = _submit(core, SpeechRequest("Growing chunks.", options=SynthesisOptions(seed=1, max_frames=40)))
    core.step()
    assert [c.n_frames for c in sink.chunks] == [1]  # first audio in the very step that prefilled
    while core.has_work:
        core.step()
    sizes = [c.n_frames for c in sink.chunks]
    assert sizes[:6] == [1, 1, 2, 4, 8, 16] and sum(sizes) == 40


def test_low_slack_decodes_every_frame(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=1, low_slack_seconds=1e9))  # always "behind"
    _, sink = _submit(core, SpeechRequest("Keep up.", options=SynthesisOptions(seed=2, max_frames=6)))
    while core.has_work:
        core.step()
    assert [c.n_frames for c in sink.chunks][:6] == [1] * 6


def test_failure_in_a_step_fails_only_that_batch(tiny_tts, monkeypatch: pytest.MonkeyPatch) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=2))
    _, bad = _submit(core, SpeechRequest("This one breaks.", options=SynthesisOptions(seed=0, max_frames=5)))
    original = core.program.runner.frame_head
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(core.program.runner, "frame_head", flaky)
    core.step()
    assert isinstance(bad.error, RuntimeError) and bad.done
    assert core.scheduler.slots.n_free == 2
    req = SpeechRequest("Still serving.", options=SynthesisOptions(seed=3, max_frames=5))
    _, good = _submit(core, req)
    while core.has_work:
        core.step()
    assert good.error is None and np.abs(_audio(good) - _reference(tiny_tts, req)[1]).max() <= 1e-4


def test_prompt_longer_than_context_rejected(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=1, max_seq_len=64))
    with pytest.raises(InvalidRequest, match="too long") as info:
        _submit(core, SpeechRequest("word " * 80))
    assert info.value.param == "input"


def test_frames_capped_by_context(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=1, max_seq_len=200))
    seq, _ = _submit(core, SpeechRequest("Hi.", options=SynthesisOptions(seed=1, max_frames=500)))
    while core.has_work:
        core.step()
    assert seq.finish_reason == "length" and len(seq.frames) == 200 - seq.prompt_len


def test_slot_pool_and_budget() -> None:
    pool = SlotPool(3)
    assert [pool.allocate(), pool.allocate()] == [0, 1]
    pool.release(0)
    assert pool.allocate() == 0 and pool.allocate() == 2 and pool.allocate() is None
    with pytest.raises(ValueError):
        pool.release(7)
    from speechserve.models.voxtral_tts.config import parse_params
    from speechserve.testing.checkpoint import preset_params

    cfg = parse_params(preset_params("full")).backbone
    assert slot_bytes(cfg, 4096, 2) == 2 * 26 * 8 * 128 * 4096 * 2  # ≈ 436 MB per sequence in bf16
    assert slots_for_budget(cfg, 4096, 2, 40 * 2**30, cap=512) == 98
    assert slots_for_budget(cfg, 4096, 2, 1, cap=512) == 1


def test_ignore_end_forces_the_frame_count(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=2))
    natural, _ = _submit(core, SpeechRequest("Hi.", options=SynthesisOptions(seed=0, max_frames=60)))
    forced, sink = _submit(
        core, SpeechRequest("Hi.", options=SynthesisOptions(seed=0, max_frames=60, ignore_end=True))
    )
    while core.has_work:
        core.step()
    assert natural.finish_reason == "end" and len(natural.frames) < 60  # this seed stops early on its own
    assert forced.finish_reason == "length" and len(forced.frames) == 60
    assert torch.equal(torch.stack(forced.frames[: len(natural.frames)]), torch.stack(natural.frames))
    assert sum(c.n_frames for c in sink.chunks) == 60
