"""What a caller hands the engine for Voxtral Realtime: a whole file, or a live feed of audio pieces.

A file arrives as an ``ASRRequest`` whose prompt is a :class:`FilePrompt` (what ``transcription_prompts``
builds, so the server's transcription route drives this model unchanged). A live stream is a
:class:`RealtimeRequest` whose :class:`AudioFeed` the client keeps pushing into from any thread while the
engine thread decodes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FilePrompt:
    """A whole audio transcribed as one stream."""

    ids: list[int]
    """The text prompt (``<s>`` + pads), counted as the request's prompt tokens."""
    samples: np.ndarray
    """16 kHz mono float32, without any padding (the stream adds it)."""
    delay_ms: int


class AudioFeed:
    """Audio pieces from a client thread to the engine thread; thread-safe. Lifetime: one stream.

    ``push`` pieces (16 kHz mono float32), then ``close``. The engine ``drain``s them; ``on_data`` (set by
    the engine program) is called after every push/close so an idle engine wakes up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[np.ndarray] = []
        self._closed = False
        self.on_data: Callable[[], None] = lambda: None

    def push(self, samples: np.ndarray) -> None:
        piece = np.array(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            if self._closed:
                raise RuntimeError("audio pushed after the feed was closed")
            self._pieces.append(piece)
        self.on_data()

    def close(self) -> None:
        """No more audio: the stream is closed with the offline silence and decoded to its end."""
        with self._lock:
            self._closed = True
        self.on_data()

    @property
    def closed(self) -> bool:
        return self._closed

    def drain(self) -> tuple[list[np.ndarray], bool]:
        """The pieces pushed since the last drain, and whether the feed is closed (after them)."""
        with self._lock:
            pieces, self._pieces = self._pieces, []
            return pieces, self._closed


@dataclass(frozen=True)
class RealtimeRequest:
    """One live stream for the engine."""

    feed: AudioFeed
    delay_ms: int | None = None
    """Text delay (None: tekken.json's default); see ``delay.py``."""
    max_tokens: int | None = None
    """Most ids to generate (None: until the audio ends)."""
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
