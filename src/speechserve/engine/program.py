"""The contract between the one engine loop (``core.py``) and a model family.

A family supplies a :class:`Program`: how to turn a request into a :class:`Sequence` (cheap checks, on the
caller's thread), how to build its prompt when it is admitted (on the engine thread), how to prefill a chunk
of it into its KV slot, and the three phases of one batched step:

1. ``sample(ready)``: from each ready sequence's current model state, produce its next output (a frame, an
   id, a codebook row) and decide whether it has finished;
2. ``emit(live, pacing, clock)``: deliver what is due to each listener (decoded audio, text) — between
   sampling and advancing, so a new output reaches the client before the next model call;
3. ``advance(cont)``: feed the new outputs back through the model, one batched call, so the next step's
   state is ready.

The loop owns everything else — the bounded waiting queue, slots from a memory budget, chunked prefill,
cancellation (also while queued), failure isolation, finishing and counters — and knows no family.

How the next families fit: Voxtral Realtime is a sequence whose ``is_ready`` is "an 80 ms block of audio
has arrived" and whose ``advance`` consumes it; Dia's ``sample`` draws 9 codebooks from the CFG pair of
rows of each sequence and its ``emit`` decodes DAC frames once the delay pattern completes them; any
family's ``advance`` can run through ``engine/cuda_graphs.py``'s bucketed graphs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class Status(enum.Enum):
    WAITING = "waiting"  # queued, no slot
    PREFILLING = "prefilling"  # has a slot, prompt partly in the KV cache
    DECODING = "decoding"  # one output per engine step
    FINISHED = "finished"


class Sink(Protocol):
    """Where a sequence's outputs go: an async stream for the server, a list for offline use."""

    @property
    def cancelled(self) -> bool: ...

    def deliver(self, item: Any) -> None: ...

    def fail(self, exc: BaseException) -> None: ...

    def close(self, finish_reason: str | None = None) -> None: ...


@dataclass(eq=False)
class Sequence:
    """One request's state inside the engine. Owned by the engine thread only; families subclass it."""

    request: Any
    sink: Any
    status: Status = Status.WAITING
    slot: int = -1
    n_prefilled: int = 0
    finish_reason: str | None = None
    """Set when finished: the family's reasons ("end", "stop", "length") or "cancelled", "error"."""
    holds_place: bool = True
    """Counts against ``max_waiting`` while queued (False for the later parts of one client request)."""

    @property
    def prompt_len(self) -> int:
        """Prompt positions to prefill (known once :meth:`Program.begin` has run)."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        return self.status is Status.FINISHED

    def finish(self, reason: str) -> None:
        """Stop generating (the slot is freed at the end of the step). Families may release more."""
        self.status, self.finish_reason = Status.FINISHED, reason


class Program(Protocol):
    """What a family gives the engine loop. Built by ``Family.program(pipeline, config)``."""

    def max_seq_len(self, requested: int) -> int:
        """Positions per slot the model allows, at most ``requested``."""
        ...

    def slot_bytes(self, max_len: int) -> int:
        """KV-cache bytes of one slot (sizing the pool from a memory budget)."""
        ...

    def allocate(self, n_slots: int, max_len: int) -> None:
        """Build the slotted KV cache (and anything sized by it). Called once by the loop."""
        ...

    def open_stream(self, request: Any, loop: Any) -> Sink:
        """The async stream a caller of the engine iterates (its sink inside the engine)."""
        ...

    def new_sequence(self, request: Any, sink: Sink) -> Sequence:
        """Cheap checks (``InvalidRequest`` and friends raise here, on the caller's thread) → the sequence."""
        ...

    def begin(self, seq: Sequence) -> None:
        """On admission, on the engine thread: the expensive prompt work (embeddings, audio encoders)."""
        ...

    def prefill(self, seq: Sequence, start: int, n: int) -> None:
        """Prompt positions ``start..start+n`` into the sequence's slot; the last chunk makes it DECODING."""
        ...

    def is_ready(self, seq: Sequence) -> bool:
        """Can this DECODING sequence produce an output this step?"""
        ...

    def sample(self, seqs: list[Any]) -> None: ...

    def emit(self, seqs: list[Any], pacing: Any, clock: Callable[[], float]) -> None:
        """Deliver what is due; ``pacing`` is the engine's :class:`Scheduler` (its deadline-aware
        ``chunk_due`` knows the measured step time), ``clock`` the engine's clock."""
        ...

    def advance(self, seqs: list[Any]) -> None: ...

    def finish(self, seq: Any) -> None:
        """After a sequence ended normally, before its sink is closed (e.g. a closing audio chunk)."""
        ...

    # Optional: ``wait_for_input(timeout)`` — called when a step could move nothing (every running sequence
    # waits for client input, e.g. live audio); block until input arrives or ``timeout`` passes.
