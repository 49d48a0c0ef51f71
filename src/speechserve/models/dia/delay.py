"""Dia's 9-codebook delay pattern (spec §8): channel c of frame t is generated at delayed row t + 1 + D[c].

Coarse codebook 0 leads and the 8 finer codebooks follow 8–15 rows behind, so a frame's 9 codes are complete
only 15 rows after its first code. Conventions (golden README): channel c holds BOS in rows 0..D[c] (16 BOS
rows for channel 8, as transformers); EOS on channel 0 at row e starts a countdown that writes EOS into
channel c at row e + D[c] and PAD after it, so EOS lands on the same undelayed frame in every channel; the
utterance ends at row e + max(D). The EOS row is forced at ``max_rows − max(D)``.
"""

from __future__ import annotations

import torch


def apply_delay(frames: torch.Tensor, delay: tuple[int, ...], bos: int, pad: int) -> torch.Tensor:
    """Undelayed frames [T, C] → delayed rows [T + max(D), C]: row t, channel c holds frame t − D[c], BOS
    before the start and PAD past the end."""
    n, c = frames.shape
    rows = torch.arange(n + max(delay))[:, None] - torch.tensor(delay)[None, :]  # source frame of each cell
    out = frames.gather(0, rows.clamp(0, max(n - 1, 0)).expand(-1, c)) if n else torch.full_like(rows, pad)
    out = torch.where(rows < 0, torch.full_like(out, bos), out)
    return torch.where(rows >= n, torch.full_like(out, pad), out)


def revert_delay(rows: torch.Tensor, delay: tuple[int, ...]) -> torch.Tensor:
    """Delayed rows [R, C] → undelayed frames [R − max(D), C]: frame t, channel c = row t + D[c]."""
    n = rows.shape[0] - max(delay)
    index = torch.arange(max(n, 0))[:, None] + torch.tensor(delay)[None, :]
    return rows.gather(0, index)


class DelayedRows:
    """One utterance's delayed rows as they are generated: the prefix (BOS row and audio prompt), forced
    cells, the EOS countdown, and which undelayed frames are complete. CPU int64; engine-agnostic."""

    def __init__(
        self,
        delay: tuple[int, ...],
        bos: int,
        eos: int,
        pad: int,
        max_rows: int,
        prompt: torch.Tensor | None = None,
    ) -> None:
        """``prompt``: audio-prompt codes [T_p, C] (voice cloning); ``max_rows``: nari's ``max_tokens``
        (delayed rows including the BOS row and the prompt)."""
        self.delay, self.eos, self.pad = delay, eos, pad
        self.max_delay = max(delay)
        n_channels = len(delay)
        prompt = prompt if prompt is not None else torch.empty(0, n_channels, dtype=torch.long)
        self.n_prompt = prompt.shape[0]
        self.max_rows = max_rows
        first = torch.full((1, n_channels), bos, dtype=torch.long)
        self.known = apply_delay(torch.cat([first, prompt.long()]), delay, bos, pad)  # PAD = to generate
        self.rows = torch.full((max(max_rows, self.n_prefix) + 1, n_channels), pad, dtype=torch.long)
        self.rows[: self.n_prefix] = self.known[: self.n_prefix]
        self.n_rows = self.n_prefix
        self.eos_row: int | None = None
        self.natural_eos = False
        """True when channel 0 chose EOS (False: forced by the row limit)."""
        self.finished = False
        self._delay_t = torch.tensor(delay)

    @property
    def n_prefix(self) -> int:
        """Rows fed before the first generated one (the BOS row and the prompt frames)."""
        return self.n_prompt + 1

    def accept(self, pick: torch.Tensor) -> torch.Tensor:
        """Write the next row from the sampled ids ``pick`` [C]: forced cells (BOS, prompt), EOS detection
        and countdown. Returns the row as written (the decoder's next input)."""
        r = self.n_rows
        row = pick.long().clone()
        if r < self.known.shape[0]:
            forced = self.known[r] != self.pad
            row[forced] = self.known[r][forced]
        if self.eos_row is None and (int(pick[0]) == self.eos or r >= self.max_rows - self.max_delay):
            self.eos_row, self.natural_eos = r, int(pick[0]) == self.eos
        if self.eos_row is not None:
            k = r - self.eos_row
            row[self._delay_t == k] = self.eos
            row[self._delay_t < k] = self.pad
            self.finished = k >= self.max_delay
        self.rows[r] = row
        self.n_rows += 1
        return row

    @property
    def last_row(self) -> torch.Tensor:
        return self.rows[self.n_rows - 1]

    @property
    def n_frames(self) -> int | None:
        """Frames of the utterance (known once EOS is decided): rows before the EOS row, prompt excluded."""
        return None if self.eos_row is None else max(0, self.eos_row - self.n_prefix)

    @property
    def n_complete(self) -> int:
        """Generated frames whose 9 codes are all written (the slowest channel lags max(D) rows)."""
        done = max(0, self.n_rows - self.n_prefix - self.max_delay)
        return done if self.n_frames is None else min(done, self.n_frames)

    def frames(self, start: int, end: int) -> torch.Tensor:
        """Undelayed codes [end − start, C] of complete generated frames start..end."""
        index = torch.arange(start, end)[:, None] + self.n_prefix + self._delay_t[None, :]
        return self.rows.gather(0, index)
