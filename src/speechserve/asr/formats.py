"""Render a :class:`Transcription` in OpenAI's response formats: text, json, verbose_json, srt, vtt.

Voxtral has no word or token timings: each segment spans one processed 30 s chunk, so subtitle cues follow
chunk boundaries. Fields OpenAI's verbose_json requires that Voxtral does not produce are filled with
neutral values (``no_speech_prob`` 0, ``temperature`` as requested).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from speechserve.asr.types import Segment, Transcription
from speechserve.errors import InvalidRequest

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
FRAMES_PER_SECOND = 100  # Whisper's `seek` unit: 10 ms mel frames


def _timestamp(seconds: float, decimal: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def usage_dict(t: Transcription) -> dict[str, Any]:
    """OpenAI's duration-based usage object."""
    return {"type": "duration", "seconds": round(t.duration, 3)}


def segment_dict(s: Segment, temperature: float = 0.0) -> dict[str, Any]:
    """One verbose_json segment (OpenAI field set and order)."""
    return {
        "id": s.id,
        "seek": round(s.start * FRAMES_PER_SECOND),
        "start": round(s.start, 3),
        "end": round(s.end, 3),
        "text": s.text,
        "tokens": list(s.tokens),
        "temperature": temperature,
        "avg_logprob": s.avg_logprob,
        "compression_ratio": _compression_ratio(s.text),
        "no_speech_prob": 0.0,
    }


def _cue_text(text: str) -> str:
    """A segment's text as one cue's payload. A blank line ends a cue in both SRT and WebVTT, so a model
    that writes paragraph breaks would cut the cue and turn its second half into a broken cue; WebVTT also
    forbids "-->" inside cue text. Lines are kept, blank ones dropped, arrows written as "->"."""
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line).replace("-->", "->")


def _cues(t: Transcription, decimal: str) -> list[tuple[str, str]]:
    cues = ((s, _cue_text(s.text)) for s in t.segments)
    return [
        (f"{_timestamp(s.start, decimal)} --> {_timestamp(s.end, decimal)}", text) for s, text in cues if text
    ]


def to_srt(t: Transcription) -> str:
    return "".join(f"{i}\n{times}\n{text}\n\n" for i, (times, text) in enumerate(_cues(t, ","), start=1))


def to_vtt(t: Transcription) -> str:
    return "WEBVTT\n\n" + "".join(f"{times}\n{text}\n\n" for times, text in _cues(t, "."))


def format_transcription(t: Transcription, fmt: str, temperature: float = 0.0) -> str:
    """The response body for ``fmt``; InvalidRequest (param ``response_format``) for anything else."""
    if fmt == "text":
        return t.text
    if fmt == "json":
        return json.dumps({"text": t.text, "usage": usage_dict(t)}, ensure_ascii=False)
    if fmt == "verbose_json":
        body = {
            "task": "transcribe",
            "language": t.language or "unknown",
            "duration": round(t.duration, 3),
            "text": t.text,
            "segments": [segment_dict(s, temperature) for s in t.segments],
            "usage": usage_dict(t),
        }
        return json.dumps(body, ensure_ascii=False)
    if fmt == "srt":
        return to_srt(t)
    if fmt == "vtt":
        return to_vtt(t)
    raise InvalidRequest(
        f"unsupported response_format {fmt!r}; use one of {', '.join(RESPONSE_FORMATS)}", "response_format"
    )
