"""The CUDA-graph path's logic, run eagerly on CPU: bucketed static buffers, padded rows in a scratch slot,
static-length masked attention. Its output must equal the dynamic path's (no GPU here to capture graphs)."""

from __future__ import annotations

import numpy as np
import torch

from speechserve import SynthesisOptions
from speechserve.engine import EngineConfig, EngineCore, SpeechRequest
from speechserve.engine.offline import ListSink
from speechserve.models.voxtral_tts.graphs import GraphedRunner


def _run(core: EngineCore, reqs: list[SpeechRequest]) -> list[tuple[list[torch.Tensor], np.ndarray]]:
    seqs = []
    for req in reqs:
        sink = ListSink()
        seq = core.make_sequence(req, sink)
        core.add(seq)
        seqs.append((seq, sink))
    while core.has_work:
        core.step()
    return [(seq.frames, np.concatenate([c.samples for c in sink.chunks])) for seq, sink in seqs]


def test_padded_static_path_equals_dynamic_path(tiny_tts) -> None:
    reqs = [
        SpeechRequest(
            f"Sentence number {i} is spoken here.", options=SynthesisOptions(seed=i, max_frames=6 + 3 * i)
        )
        for i in range(3)
    ]  # 3 sequences → bucket 4 (one padded row); they finish at different steps → buckets 2 and 1 too
    dynamic = _run(EngineCore(tiny_tts, EngineConfig(max_batch=4)), reqs)
    core = EngineCore(tiny_tts, EngineConfig(max_batch=4))
    graphed = GraphedRunner(core.program.runner, use_graphs=False, buckets=(1, 2, 4))
    core.program.hot = graphed
    static = _run(core, reqs)
    assert sorted(graphed._state) == [1, 2, 4]
    for (f_dyn, a_dyn), (f_sta, a_sta) in zip(dynamic, static, strict=True):
        assert torch.equal(torch.stack(f_dyn), torch.stack(f_sta))
        assert np.abs(a_dyn - a_sta).max() <= 1e-4
    # padded rows went to the scratch slot (index 4), never into slot 3, which no request used
    assert core.program.runner.scratch_slot == 4 and core.program.runner.cache[0].k.shape[0] == 5
    assert all(layer.k[3].abs().sum() == 0 for layer in core.program.runner.cache)


def test_buckets_cover_the_slot_count(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(max_batch=6))
    assert GraphedRunner(core.program.runner, use_graphs=True, buckets=(1, 2, 4, 8)).buckets == (1, 2, 4, 6)
    assert not GraphedRunner(core.program.runner, use_graphs=True).use_graphs  # CPU: never captures


def test_eager_switch_keeps_the_plain_runner(tiny_tts) -> None:
    core = EngineCore(tiny_tts, EngineConfig(eager=True))
    assert core.program.hot is core.program.runner
