"""Items pushed by an engine thread and awaited on an event loop, with a cancel flag flowing back.

The base of every per-request stream the engines hand to asyncio callers (audio chunks, generated tokens).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class ThreadChannel(Generic[T]):
    """Engine side (any thread): ``_push``/``_push_end``/``_push_error``. Caller side (the loop): iterate,
    ``cancel()``. Abandoning or finishing the iteration also sets the cancel flag, so the engine can free
    the request."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _push(self, item: object) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _push_end(self) -> None:
        self._push(_END)

    def cancel(self) -> None:
        """Stop generation; items already queued are dropped."""
        self._cancelled.set()

    def _received(self, item: T) -> None:
        """Hook: called on the loop for each item before it is yielded."""

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                self._received(item)  # type: ignore[arg-type]
                yield item  # type: ignore[misc]
        finally:
            self._cancelled.set()
