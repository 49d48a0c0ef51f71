"""Splitting long input text into segments the TTS model handles well, without dropping a character.

Voxtral TTS (like most TTS models) degrades on very long prompts: it rushes, or skips words. Long inputs are
therefore cut into segments of at most ``max_chars`` characters, preferring, in order: sentence ends
(``. ! ? …`` and CJK stops, not after common abbreviations or initials), line breaks, clause punctuation
(``, ; : —``), then any whitespace; a single word longer than ``max_chars`` is cut hard. Each segment is a
stripped slice of the input, so joining the segments with spaces gives the input back modulo whitespace.
"""

from __future__ import annotations

import re

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


def _next_cut(text: str, start: int, max_chars: int) -> int:
    """Where the segment beginning at ``start`` should end: the strongest break within ``max_chars``."""
    limit = start + max_chars
    if len(text) <= limit:
        return len(text)
    for pattern in _LEVELS:
        cuts = _breaks(text, pattern, start, limit)
        if cuts:
            return cuts[-1]
    return limit  # one word longer than a whole segment


def split_text(text: str, max_chars: int) -> list[str]:
    """Split ``text`` into stripped, non-empty segments of at most ``max_chars`` characters each.

    Whitespace-only text gives ``[]``. ``"".join(text.split())`` equals the same over the segments.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be ≥ 1, got {max_chars}")
    segments: list[str] = []
    start = len(text) - len(text.lstrip())
    while start < len(text):
        cut = _next_cut(text, start, max_chars)
        piece = text[start:cut].strip()
        if piece:
            segments.append(piece)
        start = cut + (len(text[cut:]) - len(text[cut:].lstrip()))
    return segments
