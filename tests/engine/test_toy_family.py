"""The next family is cheap: a toy family registered here, in a few lines, is detected from its files,
loaded by ``speechserve.load``, batched by the shared engine loop (sync and async) and driven by its SDK —
without touching any file of the package."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import speechserve
from speechserve import registry
from speechserve.engine import Engine, EngineConfig, EngineCore, Sequence, Status, TokenStream
from speechserve.engine.offline import TokenListSink, stream
from speechserve.errors import InvalidRequest, Overloaded


# ---- the whole family: a "model" that counts on from its prompt, step * weight per step -------------------
@dataclass(frozen=True)
class CountRequest:
    start: int
    n: int
    request_id: str = "toy"


@dataclass(eq=False, kw_only=True)
class CountSequence(Sequence):
    out: list[int] = field(default_factory=list)

    @property
    def prompt_len(self) -> int:
        return 3


class CountProgram:
    frame_seconds = 1.0

    def __init__(self, pipeline, config) -> None:  # type: ignore[no-untyped-def]
        self.pipeline, self.slots, self.steps = pipeline, {}, 0

    def max_seq_len(self, requested: int) -> int:
        return requested

    def slot_bytes(self, max_len: int) -> int:
        return 8

    def allocate(self, n_slots: int, max_len: int) -> None:
        self.n_slots = n_slots

    def open_stream(self, request, loop):  # type: ignore[no-untyped-def]
        return TokenStream(request.request_id, 3, loop)

    def new_sequence(self, request: CountRequest, sink) -> CountSequence:  # type: ignore[no-untyped-def]
        if request.n < 1:
            raise InvalidRequest("n must be at least 1", param="n")
        return CountSequence(request, sink)

    def begin(self, seq: CountSequence) -> None:
        self.slots[seq.slot] = seq.request.start  # the "KV cache" of this slot

    def prefill(self, seq: CountSequence, start: int, n: int) -> None:
        seq.n_prefilled = start + n
        if seq.n_prefilled == seq.prompt_len:
            seq.status = Status.DECODING

    def is_ready(self, seq: CountSequence) -> bool:
        return True

    def sample(self, seqs: list[CountSequence]) -> None:
        self.steps += 1
        for seq in seqs:
            seq.out.append(self.slots[seq.slot])
            seq.sink.deliver(self.slots[seq.slot])
            if len(seq.out) == seq.request.n:
                seq.finish("length")

    def emit(self, seqs, pacing, clock) -> None:  # type: ignore[no-untyped-def]
        pass

    def advance(self, seqs: list[CountSequence]) -> None:
        for seq in seqs:
            self.slots[seq.slot] += int(self.pipeline.weight)

    def finish(self, seq: CountSequence) -> None:
        pass


class CountPipeline:
    def __init__(self, weight: torch.Tensor, name: str) -> None:
        self.weight, self.name = weight, name

    def count(self, start: int, n: int) -> list[int]:  # the SDK: runs on the engine, synchronously
        core = EngineCore(self, EngineConfig(max_batch=1))
        return list(stream(core, CountRequest(start, n), TokenListSink()))


def _load(ctx: registry.LoadContext) -> CountPipeline:
    from safetensors.torch import load_file

    return CountPipeline(load_file(str(ctx.layout.weights[0]))["step"], ctx.name)


TOY = registry.Family(
    name="toy_counter",
    claims=lambda fmt, config: fmt == "mistral" and config.get("model_type") == "toy_counter",
    load=_load,
    capabilities=frozenset({"transcription"}),
    program=CountProgram,
)
# ---- end of the family ------------------------------------------------------------------------------------


@pytest.fixture
def toy_checkpoint(tmp_path: Path):  # type: ignore[no-untyped-def]
    registry.register(TOY)
    (tmp_path / "params.json").write_text(json.dumps({"model_type": "toy_counter"}))
    save_file({"step": torch.tensor(2)}, str(tmp_path / "consolidated.safetensors"))
    yield tmp_path
    registry.unregister("toy_counter")


def test_detected_loaded_and_driven_by_its_sdk(toy_checkpoint: Path) -> None:
    toy = speechserve.load(toy_checkpoint, device="cpu")
    assert isinstance(toy, CountPipeline) and toy.family is TOY and toy.name == toy_checkpoint.name
    assert toy.count(5, 4) == [5, 7, 9, 11]
    with pytest.raises(InvalidRequest, match="at least 1"):
        toy.count(5, 0)


def test_batched_by_the_shared_loop_with_joins_and_a_cancel(toy_checkpoint: Path) -> None:
    toy = speechserve.load(toy_checkpoint, device="cpu")
    core = EngineCore(toy, EngineConfig(max_batch=2))
    sinks = [TokenListSink() for _ in range(4)]
    for i, sink in enumerate(sinks[:3]):  # the third waits for a slot
        core.add(core.make_sequence(CountRequest(100 * i, 3 + i), sink))
    core.step()
    assert core.n_running == 2 and core.n_waiting == 1
    sinks[1].cancel()  # leaves mid-generation; its slot goes to the waiting one
    core.add(core.make_sequence(CountRequest(1000, 2), sinks[3]))
    while core.has_work:
        core.step()
        assert core.n_running <= 2
    assert list(sinks[0].chunks) == [0, 2, 4] and sinks[0].finish_reason == "length"
    assert sinks[1].finish_reason == "cancelled" and len(sinks[1].chunks) < 4
    assert list(sinks[2].chunks) == [200, 202, 204, 206, 208]
    assert list(sinks[3].chunks) == [1000, 1002]
    assert core.scheduler.slots.n_free == 2
    assert core.program.steps < 3 + 4 + 5 + 2  # outputs of different requests shared steps


def test_served_by_the_async_engine_with_its_bounded_queue(toy_checkpoint: Path) -> None:
    toy = speechserve.load(toy_checkpoint, device="cpu")

    async def main() -> None:
        engine = Engine(toy, EngineConfig(max_batch=1, max_waiting=1))
        engine.start()
        try:
            first = engine.submit(CountRequest(1, 3))
            results = await asyncio.gather(*[_collect(s) for s in [first]])
            assert results == [[1, 3, 5]] and first.finish_reason == "length"
            engine.submit(CountRequest(1, 10_000))
            with pytest.raises(Overloaded):
                for _ in range(3):
                    engine.submit(CountRequest(1, 10_000))
        finally:
            engine.stop()

    asyncio.run(main())


async def _collect(s: TokenStream) -> list[int]:
    return [t async for t in s]
