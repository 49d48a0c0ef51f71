"""Splitting long input text into segments the TTS model handles well, without dropping a character.

Voxtral TTS (like most TTS models) degrades on very long prompts: it rushes, or skips words. Long inputs are
therefore cut into segments of at most ``max_chars`` characters, preferring, in order: sentence ends
(``. ! ? …`` and CJK stops, not after common abbreviations or initials), line breaks, clause punctuation
(``, ; : —``), then any whitespace; a single word longer than ``max_chars`` is cut hard. Each segment is a
stripped slice of the input, so joining the segments with spaces gives the input back modulo whitespace.

Dialogue scripts (speaker tags ``[S1]``, ``[S2]`` … opening each turn, as Dia reads them) are split by
:func:`split_dialogue`: whole turns are kept together while they fit, a turn too long on its own is cut at
its sentences (then clauses, then words) and every piece after the first is opened with the turn's tag again,
so each segment says who speaks; a cut never falls inside a tag. Its size limit can be counted in the model's
own units (e.g. UTF-8 bytes with a tag counting one, Dia's encoder positions).

Text that is still being written (an LLM's tokens) is cut by :class:`LiveSegmenter`: fed fragments, it
returns each sentence (or clause) as soon as the character after its end shows that it has ended, and never
earlier — ``3.`` may become ``3.14``, ``1,`` may become ``1,000``, ``Dr.`` is not an end, a closing quote may
follow — so a unit is never cut inside a number or after an abbreviation. Script text (speaker tags) is cut
only between turns. Nothing is dropped: the units' words are the fed words, in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

# Break opportunities, strongest first. Each match's end is where the next segment may start.
_SENTENCE = re.compile(r"[.!?…。！？]+[\"'”’»)\]]*\s+|[。！？]+")
_LINE = re.compile(r"\n\s*")
_CLAUSE = re.compile(r"[,;:，；：、—–]+[\"'”’»)\]]*\s+|\s+[—–-]+\s+")
_SPACE = re.compile(r"\s+")
_LEVELS = (_SENTENCE, _LINE, _CLAUSE, _SPACE)

# A period after these does not end a sentence ("Dr. Smith", "e.g. this").
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "no",
        "vol",
        "fig",
        "approx",
        "dept",
        "est",
        "inc",
        "ltd",
        "co",
        "mt",
        "ft",
    ]
)


def _is_abbreviation(text: str, end_of_dot: int) -> bool:
    """True when the sentence-looking break ending at ``end_of_dot`` follows an abbreviation or initial."""
    word = re.search(r"(\S+)$", text[:end_of_dot])
    if word is None or not word.group(1).endswith("."):
        return False
    token = word.group(1).rstrip(".").lower()
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _breaks(text: str, pattern: re.Pattern[str], lo: int, hi: int) -> list[int]:
    """Starts of the next segment offered by ``pattern`` after ``lo`` whose segment would end by ``hi``."""
    found = []
    for m in pattern.finditer(text, lo):
        content_end = m.start() + len(m.group().rstrip())  # the break's own whitespace is not content
        if content_end > hi:
            break
        if pattern is _SENTENCE and _is_abbreviation(text, content_end):
            continue
        found.append(m.end())
    return found


def _limit(text: str, start: int, max_chars: int, max_size: int | None, size: Callable[[str], int]) -> int:
    """The furthest end of a segment starting at ``start``: ``max_chars`` characters and, when given, at most
    ``max_size`` in ``size`` units (at least one character, so that every call makes progress)."""
    limit = min(len(text), start + max_chars)
    if max_size is None or size(text[start:limit]) <= max_size:
        return limit
    lo, hi = start + 1, limit  # size grows with the slice's end: bisect for the last end that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if size(text[start:mid]) <= max_size else (lo, mid - 1)
    return lo


def _next_cut(
    text: str, start: int, max_chars: int, max_size: int | None = None, size: Callable[[str], int] = len
) -> int:
    """Where the segment beginning at ``start`` should end: the strongest break within the limits."""
    limit = _limit(text, start, max_chars, max_size, size)
    if limit == len(text):
        return len(text)
    for pattern in _LEVELS:
        cuts = _breaks(text, pattern, start, limit)
        if cuts:
            return cuts[-1]
    return limit  # one word longer than a whole segment


def split_text(
    text: str, max_chars: int, max_size: int | None = None, size: Callable[[str], int] = len
) -> list[str]:
    """Split ``text`` into stripped, non-empty segments of at most ``max_chars`` characters each (and, with
    ``max_size``, of at most that ``size(segment)``; ``size`` must grow with the text, e.g. UTF-8 bytes).

    Whitespace-only text gives ``[]``. ``"".join(text.split())`` equals the same over the segments.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be ≥ 1, got {max_chars}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be ≥ 1, got {max_size}")
    segments: list[str] = []
    start = len(text) - len(text.lstrip())
    while start < len(text):
        cut = _next_cut(text, start, max_chars, max_size, size)
        piece = text[start:cut].strip()
        if piece:
            segments.append(piece)
        start = cut + (len(text[cut:]) - len(text[cut:].lstrip()))
    return segments


SPEAKER_TAG = re.compile(r"\[S\d+\]")
"""A dialogue turn's opening tag: ``[S1]``, ``[S2]`` …"""


def _turns(text: str) -> list[tuple[str, str]]:
    """``(tag, body)`` of every turn, stripped; text before the first tag is a turn without one."""
    starts = [m.start() for m in SPEAKER_TAG.finditer(text)]
    bounds = [0, *starts] if not starts or starts[0] else starts
    turns = []
    for lo, hi in zip(bounds, [*bounds[1:], len(text)], strict=True):
        m = SPEAKER_TAG.match(text, lo)
        tag = m.group() if m else ""
        body = text[lo + len(tag) : hi].strip()
        if tag or body:
            turns.append((tag, body))
    return turns


def _turn_pieces(
    tag: str, body: str, max_chars: int, max_size: int | None, size: Callable[[str], int]
) -> list[str]:
    """The turn as one piece when it fits, else its body split to fit with ``tag`` opening every piece."""
    whole = f"{tag} {body}".strip()
    if len(whole) <= max_chars and (max_size is None or size(whole) <= max_size):
        return [whole]
    prefix = f"{tag} " if tag else ""  # limits smaller than the tag itself are exceeded by the tag
    room_chars = max(1, max_chars - len(prefix))
    room_size = None if max_size is None else max(1, max_size - size(prefix))
    return [prefix + piece for piece in split_text(body, room_chars, room_size, size)]


def split_dialogue(
    text: str, max_chars: int, max_size: int | None = None, size: Callable[[str], int] = len
) -> list[str]:
    """Split a dialogue script at its speaker turns, then inside over-long turns (see the module docstring).

    Consecutive turns share a segment while it stays within ``max_chars`` characters and ``max_size``
    (``size`` units). Every segment is non-empty and stripped; the words of the segments, speaker tags
    aside, are the words of ``text`` in order (pieces of a split turn repeat its tag).
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be ≥ 1, got {max_chars}")
    pieces = [
        piece for tag, body in _turns(text) for piece in _turn_pieces(tag, body, max_chars, max_size, size)
    ]
    segments: list[str] = []
    for piece in pieces:
        joined = f"{segments[-1]} {piece}" if segments else piece
        fits = len(joined) <= max_chars and (max_size is None or size(joined) <= max_size)
        if segments and fits:
            segments[-1] = joined
        else:
            segments.append(piece)
    return segments


# ---- text that is still being written ---------------------------------------------------------------------------
Granularity = Literal["none", "sentence", "clause"]
"""Where :class:`LiveSegmenter` cuts: only when flushed, at sentence ends (and line breaks), or also at
clause punctuation (``, ; : —``)."""
GRANULARITIES: tuple[Granularity, ...] = ("none", "sentence", "clause")
MIN_CLAUSE_CHARS = 10
"""A clause break needs this much text before it, so that a lone "Well," or "e.g.," waits for its clause
(a unit of one short word sounds clipped when synthesized alone)."""
_CLOSERS = "\"'”’»)]」』"
_TAG_PREFIX = re.compile(r"\[(S\d*)?$")
"""The start of a speaker tag still arriving at the end of the text (``[``, ``[S``, ``[S1``)."""


def _spoken(unit: str) -> list[str]:
    """``[unit]`` stripped, or ``[]`` when there is nothing to speak in it (blank, or a bare speaker tag)."""
    unit = unit.strip()
    return [unit] if unit and not SPEAKER_TAG.fullmatch(unit) else []


def _confirmed(text: str, m: re.Match[str]) -> bool:
    """True when the character after the break ``m`` is known and ends the unit (whitespace, or any
    non-closing character after a CJK stop): the next fragment can no longer extend the punctuation."""
    if m.group()[-1].isspace():
        return True
    return m.end() < len(text) and text[m.end()] not in _CLOSERS


class LiveSegmenter:
    """Cuts text that arrives in fragments into units to synthesize, each as soon as it is complete.

    ``feed(fragment)`` returns the units the fragment completed (often none); ``flush()`` returns the rest
    (the writer is done); ``clear()`` drops the unspoken text. Units are stripped and non-empty, and their
    words, in order, are the fed words. Prose is cut at the first confirmed break of the granularity; a
    unit longer than ``max_chars`` is cut early at its strongest break (then clause, then word), as
    :func:`split_text` does. Once a speaker tag (``[S1]``) is seen the text is a script: a unit is one whole
    turn, ended by the next tag, and a turn longer than ``max_chars`` is cut with its tag repeated.
    Lifetime: one stream of text (reusable after ``flush``); not thread-safe.
    """

    def __init__(
        self, granularity: Granularity = "sentence", max_chars: int = 400, min_clause_chars: int = MIN_CLAUSE_CHARS
    ) -> None:  # fmt: skip
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be ≥ 1, got {max_chars}")
        self.granularity, self.max_chars, self.min_clause_chars = granularity, max_chars, min_clause_chars
        levels = {"none": (), "sentence": (_SENTENCE, _LINE), "clause": (_SENTENCE, _LINE, _CLAUSE)}
        self._levels: tuple[re.Pattern[str], ...] = levels[granularity]
        self._text = ""
        self._script = False  # a speaker tag was seen: cut between turns only

    @property
    def pending(self) -> str:
        """Text fed but not yet returned in a unit."""
        return self._text

    def feed(self, fragment: str) -> list[str]:
        """Add the next piece of text; the units it completed, in order."""
        self._text += fragment
        return self._units()

    def flush(self) -> list[str]:
        """The writer is done: every remaining unit (the last one however it ends). Resets the segmenter."""
        units = self._units() + _spoken(self._text)
        self.clear()
        return units

    def clear(self) -> str:
        """Drop the text not yet returned (a barge-in); returns it. Resets the segmenter."""
        dropped, self._text, self._script = self._text, "", False
        return dropped

    def _units(self) -> list[str]:
        units: list[str] = []
        while True:
            self._text = self._text.lstrip()
            self._script = self._script or SPEAKER_TAG.search(self._text) is not None
            cut = self._turn_cut() if self._script else self._prose_cut(self._text)
            if cut is None:
                return units
            end, tag = cut
            units += _spoken(self._text[:end])
            self._text = f"{tag} {self._text[end:].lstrip()}" if tag else self._text[end:]

    def _prose_cut(self, text: str, lo: int = 0) -> tuple[int, str] | None:
        """End of the unit starting at ``lo`` (and no tag to repeat), or None while it may still grow."""
        end = self._first_break(text, lo)
        if end is not None and end - lo <= self.max_chars:
            return end, ""
        if len(text.rstrip()) - lo > self.max_chars:
            return _next_cut(text, lo, self.max_chars), ""
        return None

    def _first_break(self, text: str, lo: int) -> int | None:
        """Where the earliest confirmed break of the granularity ends (the next unit's start)."""
        best = None
        for pattern in self._levels:
            for m in pattern.finditer(text, lo):
                content_end = m.start() + len(m.group().rstrip())
                if best is not None and m.end() >= best:
                    break
                if not _confirmed(text, m):
                    continue
                if pattern is _SENTENCE and _is_abbreviation(text, content_end):
                    continue
                if pattern is _CLAUSE and content_end - lo < self.min_clause_chars:
                    continue
                best = m.end()
                break
        return best

    def _turn_cut(self) -> tuple[int, str] | None:
        """A script: the current turn ends where the next tag starts; a long turn is cut inside (never in a
        tag, complete or still arriving), its tag repeated on the rest."""
        text = self._text
        opening = SPEAKER_TAG.match(text)
        tag = opening.group() if opening else ""
        body = len(tag) + (len(text[len(tag) :]) - len(text[len(tag) :].lstrip()))
        following = SPEAKER_TAG.search(text, max(1, len(tag)))
        if following is not None and not text[body : following.start()].strip():
            return following.start(), ""  # a tag with no words before the next one: nothing to speak
        end = following.start() if following and self.granularity != "none" else None
        if end is not None and end <= self.max_chars:
            return end, ""
        arriving = _TAG_PREFIX.search(text)
        limit = end if end is not None else (arriving.start() if arriving else len(text))
        room = max(1, self.max_chars - len(tag) - 1)
        if len(text[:limit].rstrip()) - body <= room:
            return (end, "") if end is not None else None
        cut = _next_cut(text[:limit], body, room)
        return cut, "" if SPEAKER_TAG.match(text[cut:].lstrip()) else tag
