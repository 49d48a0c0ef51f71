"""The async engine: ``Engine(pipeline, config).submit(request) -> stream`` for any family, on one thread
that steps the shared :class:`~speechserve.engine.core.EngineCore` — a bounded inbox, one loop, clean failure.

Interface for the server (and any asyncio caller): ``start()``, ``stop()``, ``stats()``, and ``submit``
(cheap checks at once, ``Overloaded`` when the waiting queue is full; the prompt is built on the engine
thread when the request is admitted, never on the event loop). The stream type is the family's
(``AudioStream`` of chunks for speech, ``TokenStream`` of ids for text).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from speechserve.engine.core import EngineConfig, EngineCore
from speechserve.errors import EngineDead, Overloaded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineStats:
    waiting: int
    running: int


class Engine:
    """Streams outputs for many concurrent requests from one engine thread. Lifetime: between ``start()``
    and ``stop()``."""

    def __init__(self, pipeline: Any, config: EngineConfig | None = None, *, core: EngineCore | None = None) -> None:  # fmt: skip
        self.config = config or EngineConfig()
        self.core = core or EngineCore(pipeline, self.config)
        self.pipeline = pipeline
        self.name = f"{getattr(pipeline, 'name', '') or 'model'} engine"
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0  # submitted, not yet taken by the engine thread
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dead: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"speechserve-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def stats(self) -> EngineStats:
        """Queue places taken (requests waiting for a slot) and sequences running."""
        return EngineStats(waiting=self._pending + self.core.n_waiting_places, running=self.core.n_running)

    def submit(self, request: Any, loop: asyncio.AbstractEventLoop | None = None) -> Any:
        """Check and enqueue ``request``. Call from the event loop that will consume the returned stream,
        or from a worker thread with that ``loop``."""
        return self.submit_many([request], loop)[0]

    def submit_many(self, requests: list[Any], loop: asyncio.AbstractEventLoop | None = None) -> list[Any]:
        """Check and enqueue the parts of ONE client request (e.g. the text segments of a long input): they
        take one queue place together, whatever their number, and are all refused or all accepted."""
        self._check_alive()
        loop = loop or asyncio.get_running_loop()
        streams = [self.core.program.open_stream(r, loop) for r in requests]
        try:
            seqs = [self.core.make_sequence(r, s) for r, s in zip(requests, streams, strict=True)]
        except BaseException:
            for stream in streams:
                stream.cancel()
            raise
        for seq in seqs[1:]:
            seq.holds_place = False
        self._enqueue(seqs)
        return streams

    def _check_alive(self) -> None:
        if self._dead is not None or self._thread is None:
            raise EngineDead(f"the {self.name} is not running")

    def _enqueue(self, seqs: list[Any]) -> None:
        """Hand one request's validated sequences to the engine thread (one queue place), or raise
        ``Overloaded``."""
        with self._lock:
            if self._pending + self.core.n_waiting_places >= self.config.max_waiting:
                raise Overloaded(f"{self.config.max_waiting} requests are already waiting; retry later")
            self._pending += 1
        self._inbox.put(seqs)

    def _take(self, block: bool) -> bool:
        """Move submissions into the core; False when asked to stop."""
        while True:
            try:
                seq = self._inbox.get(block=block)
            except queue.Empty:
                return True
            if seq is None:
                return False
            with self._lock:
                self._pending -= 1
                for part in seq:  # added under the lock: the place moves from pending to waiting at once
                    self.core.add(part)
            block = False

    def _run(self) -> None:
        try:
            while self._take(block=not self.core.has_work):
                if self.core.has_work:
                    self.core.step()
        except BaseException as exc:  # the loop itself broke: fail everything still in flight
            log.exception("%s loop died", self.name)
            self._dead = exc
            for seq in [*self.core.scheduler.waiting, *self.core.scheduler.running]:
                seq.sink.fail(EngineDead(f"the {self.name} stopped: {exc}"))
            raise
