"""Dia on the shared engine loop: streamed == one-shot, same seed → same audio, batched == alone (joins, leaves,
a cancellation), the async engine with the server's SynthesisOptions, bad requests, voice cloning."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
import torch

from speechserve.engine import Engine, EngineConfig, EngineCore, SpeechRequest
from speechserve.engine.offline import ListSink
from speechserve.errors import InvalidRequest
from speechserve.models.dia.options import DiaOptions
from speechserve.models.dia.pipeline import DiaVoicePrompt
from speechserve.options import SynthesisOptions

TEXT = "[S1] Hello there. [S2] Hi! (laughs)"
REL_TOL = 1e-4


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= REL_TOL * max(np.abs(want).max(), 1e-6)


def test_streamed_equals_one_shot(dia) -> None:
    options = DiaOptions(seed=5, max_tokens=90, first_chunk_frames=3, max_chunk_frames=7)
    stream = dia.synthesize(TEXT, options)
    chunks = [next(stream)]
    assert dia._offline_core().has_work  # the first chunk left while generation was still running
    chunks += list(stream)
    codes = dia.codes(TEXT, options)  # the plain reference loop, no engine
    assert chunks[-1].is_last and not any(c.is_last for c in chunks[:-1])
    assert chunks[0].n_frames == 3 and len(chunks) >= 8
    assert [c.first_frame for c in chunks] == list(np.cumsum([0] + [c.n_frames for c in chunks[:-1]]))
    assert sum(c.n_frames for c in chunks) == codes.shape[0] == 90 - 16
    joined = np.concatenate([c.samples for c in chunks])
    assert joined.dtype == np.float32 and {c.sample_rate for c in chunks} == {44100}
    _close(joined, dia.decode(codes))


def test_same_seed_same_audio(dia) -> None:
    options = DiaOptions(seed=11, max_tokens=60)
    first, second = dia.generate(TEXT, options), dia.generate(TEXT, options)
    assert np.array_equal(first.samples, second.samples) and first.n_frames == 44
    other = dia.generate(TEXT, replace(options, seed=12))
    assert not np.array_equal(first.samples, other.samples)


def test_batched_equals_alone_with_joins_leaves_and_a_cancel(dia) -> None:
    requests = [
        ("[S1] One.", DiaOptions(seed=1, max_tokens=70)),
        ("[S2] Two, a bit longer text. [S1] Yes.", DiaOptions(seed=2, max_tokens=50, temperature=0.0)),
        ("[S1] Three (sighs).", DiaOptions(seed=3, max_tokens=80, top_p=0.8, cfg_scale=2.0)),
        ("[S2] Four joins late.", DiaOptions(seed=4, max_tokens=45, first_chunk_frames=2)),
        ("[S1] Five is cancelled.", DiaOptions(seed=5, max_tokens=90)),
    ]
    core = EngineCore(dia, EngineConfig(max_batch=3))
    sinks = [ListSink() for _ in requests]
    seqs = []

    def submit(i: int) -> None:
        seq = core.make_sequence(SpeechRequest(requests[i][0], None, None, requests[i][1]), sinks[i])  # type: ignore[arg-type]
        seqs.append(seq)
        core.add(seq)

    for i in (0, 1, 4):
        submit(i)
    for step in range(60):
        if step == 5:
            submit(2)  # waits for a slot: joins when request 1 leaves
        if step == 12:
            submit(3)
        if step == 20:
            sinks[4].cancel()
        core.step()
        assert core.n_running <= 3
        if not core.has_work:
            break
    while core.has_work:
        core.step()
    assert sinks[4].finish_reason == "cancelled"
    for i, (text, options) in enumerate(requests[:4]):
        alone = dia.codes(text, options)
        seq = next(s for s in seqs if s.request.text == text)
        rows = seq.stream.rows
        assert torch.equal(rows.frames(0, rows.n_frames), alone), f"request {i} differs from its solo run"
        assert sinks[i].finish_reason in ("end", "length")
        _close(np.concatenate([c.samples for c in sinks[i].chunks]), dia.decode(alone))
    assert core.scheduler.slots.n_free == 3


def test_async_engine_takes_the_servers_synthesis_options(dia) -> None:
    options = SynthesisOptions(seed=3, max_frames=20)

    async def main() -> tuple[np.ndarray, int, str | None]:
        engine = Engine(dia, EngineConfig(max_batch=2))
        engine.start()
        try:
            stream = engine.submit(SpeechRequest(TEXT, None, None, options))
            audio = await stream.collect()
            return audio.samples, stream.usage.output_tokens, stream.finish_reason
        finally:
            engine.stop()

    samples, frames, reason = asyncio.run(main())
    assert frames == 20 and reason == "length" and samples.shape == (20 * 512,)
    _close(samples, dia.generate(TEXT, options).samples)


@pytest.mark.parametrize(
    ("text", "voice", "options", "param"),
    [
        (TEXT, "alloy", DiaOptions(), "voice"),
        (TEXT, None, DiaOptions(max_tokens=10), "max_tokens"),
        ("   ", None, DiaOptions(), "input"),
        ("x" * 1025, None, DiaOptions(), "input"),
    ],
)
def test_bad_requests_fail_on_submission(
    dia, text: str, voice: str | None, options: DiaOptions, param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        dia.synthesize(text, options, voice=voice)
    assert info.value.param == param


def test_voice_cloning_prompts_the_decoder_with_the_reference_codes(dia) -> None:
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(512 * 6 - 100)).astype(np.float32)
    prompt = dia.clone_voice((clip, 44100))
    assert (
        isinstance(prompt, DiaVoicePrompt) and prompt.codes.shape == (6, 9) and int(prompt.codes.max()) < 1024
    )
    options = DiaOptions(seed=9, max_tokens=60, ref_text="[S1] Reference words. ")
    with pytest.raises(InvalidRequest, match="ref_text"):
        dia.generate("[S2] New words.", DiaOptions(seed=9), ref_audio=prompt)
    cloned = dia.generate("[S2] New words.", options, ref_audio=prompt)
    raw = dia.generate("[S2] New words.", options, ref_audio=(clip, 44100))  # encoded on the engine thread
    assert np.array_equal(cloned.samples, raw.samples)
    # the prompt's rows count against max_tokens; only the new audio comes out
    assert cloned.n_frames == 60 - 15 - 1 - 6
    codes = dia.codes("[S2] New words.", options, ref_audio=prompt)
    _close(cloned.samples, dia.decode(codes))
