"""SRT and WebVTT stay parseable whatever text a segment carries (blank lines, arrows)."""

from __future__ import annotations

import re

from speechserve.asr.formats import format_transcription
from speechserve.asr.types import Segment, Transcription, Usage

PARAGRAPHS = "First paragraph.\n\nSecond one --> here.\n"


def _transcription() -> Transcription:
    segments = [
        Segment(0, 0.0, 30.0, PARAGRAPHS),
        Segment(1, 30.0, 31.5, "   \n\n "),  # only whitespace: no cue
        Segment(2, 31.5, 40.0, " Last words."),
    ]
    text = "".join(s.text for s in segments)
    return Transcription(text, segments, None, 40.0, Usage(40.0, 0, 0))


def _blocks(body: str) -> list[list[str]]:
    """Cue blocks as a subtitle parser sees them: separated by blank lines."""
    return [b.split("\n") for b in body.strip("\n").split("\n\n")]


def test_srt_cues_survive_blank_lines_in_the_text() -> None:
    blocks = _blocks(format_transcription(_transcription(), "srt"))
    assert [b[0] for b in blocks] == ["1", "2"]
    for block in blocks:
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", block[1])
    assert blocks[0][2:] == ["First paragraph.", "Second one -> here."]
    assert blocks[1][2:] == ["Last words."]


def test_vtt_cues_survive_blank_lines_and_arrows() -> None:
    blocks = _blocks(format_transcription(_transcription(), "vtt"))
    assert blocks[0] == ["WEBVTT"]
    cues = blocks[1:]
    assert len(cues) == 2
    for cue in cues:
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", cue[0])
        assert not any("-->" in line for line in cue[1:])
    assert cues[0][1:] == ["First paragraph.", "Second one -> here."]
