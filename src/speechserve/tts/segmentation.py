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
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
