"""Joining consecutive audio segments with a short linear crossfade, streamed or one-shot.

The server generates long inputs as several segments; this module owns how their audio is spliced so the
seam is inaudible: the last ``n`` samples of the audio so far are held back, and when the next segment
starts its first samples are faded in over them. Every input sample appears in the output exactly once
except the ``min(n, len(tail), len(head))`` overlapped at each seam, which are mixed.
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.zeros(0, dtype=np.float32)


def _mix(tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """``tail`` then ``head`` with their overlap of ``min`` length linearly crossfaded."""
    m = min(len(tail), len(head))
    if m == 0:
        return np.concatenate([tail, head])
    ramp = ((np.arange(m, dtype=np.float32) + 0.5) / m).astype(np.float32)
    mixed = tail[len(tail) - m :] * (1.0 - ramp) + head[:m] * ramp
    return np.concatenate([tail[: len(tail) - m], mixed, head[m:]]).astype(np.float32)


class StreamingCrossfade:
    """Streamed splicing of segments. Call ``push`` with each segment's samples in order, ``boundary``
    between segments, and ``flush`` at the end; the concatenated returns are the joined audio.

    Lifetime: one response. Holds back at most ``n`` samples (the crossfade length) at any time, plus the
    head of a new segment until it is as long as the held tail.
    """

    def __init__(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"crossfade length must be ≥ 0, got {n}")
        self.n = int(n)
        self._tail = _EMPTY  # end of the audio so far, held back for the next seam
        self._head: np.ndarray | None = None  # start of the new segment while a seam is open

    def _hold(self, x: np.ndarray) -> np.ndarray:
        """Keep the last ``n`` samples of tail + ``x`` back; return the rest."""
        buf = np.concatenate([self._tail, x]) if len(self._tail) else x
        cut = max(0, len(buf) - self.n)
        self._tail = buf[cut:]
        return buf[:cut]

    def _close_seam(self) -> np.ndarray:
        head, self._head = self._head, None
        tail, self._tail = self._tail, _EMPTY
        return self._hold(_mix(tail, head if head is not None else _EMPTY))

    def boundary(self) -> np.ndarray:
        """Mark the start of the next segment; returns audio released by a seam still open (short segment)."""
        out = self._close_seam() if self._head is not None else _EMPTY
        if len(self._tail):
            self._head = _EMPTY
        return out

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples of the current segment; return the joined samples that are final now."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._head is None:
            return self._hold(x)
        self._head = np.concatenate([self._head, x])
        return self._close_seam() if len(self._head) >= len(self._tail) else _EMPTY

    def flush(self) -> np.ndarray:
        """End of the last segment: return everything still held back."""
        out = self._close_seam() if self._head is not None else _EMPTY
        tail, self._tail = self._tail, _EMPTY
        return np.concatenate([out, tail]).astype(np.float32)


def crossfade_join(segments: list[np.ndarray], n: int) -> np.ndarray:
    """One-shot form of :class:`StreamingCrossfade`: join whole segments with ``n``-sample crossfades."""
    joiner = StreamingCrossfade(n)
    out: list[np.ndarray] = []
    for i, seg in enumerate(segments):
        if i:
            out.append(joiner.boundary())
        out.append(joiner.push(seg))
    out.append(joiner.flush())
    return np.concatenate(out).astype(np.float32) if out else _EMPTY.copy()
