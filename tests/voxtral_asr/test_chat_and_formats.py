"""Audio chat through the SDK, and the transcription response formats (text/json/verbose_json/srt/vtt)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf

from speechserve import ChatOptions, InvalidRequest, Segment, Transcription, Usage
from speechserve.asr import format_transcription

RATE = 16000


def _wav_b64(seconds: float = 1.0, seed: int = 0) -> str:
    x = (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, RATE, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


def _user(*parts: dict) -> list[dict]:
    return [{"role": "user", "content": [*parts, {"type": "text", "text": "What is said?"}]}]


def test_audio_part_forms_give_the_same_prompt_and_answer(tiny_asr) -> None:
    b64 = _wav_b64()
    forms = [
        {"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}},
        {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{b64}"}},
        {"type": "audio", "audio": base64.b64decode(b64)},
    ]
    opts = ChatOptions(max_tokens=5)
    results = [tiny_asr.chat(_user(part), opts) for part in forms]
    assert len({r.text for r in results}) == 1
    prompt, seconds = tiny_asr.chat_prompt(_user(forms[0]))
    assert seconds == 1.0 and prompt.ids[:3] == [1, 3, 25] and prompt.ids.count(24) == 375
    assert results[0].usage == Usage(1.0, len(prompt.ids), 5) and results[0].finish_reason == "length"


def test_chat_stream_joins_and_multi_turn(tiny_asr) -> None:
    messages = [
        *_user({"type": "input_audio", "input_audio": {"data": _wav_b64(), "format": "wav"}}),
        {"role": "assistant", "content": "Some words."},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": _wav_b64(2.0, seed=1)}]},
    ]
    stream = tiny_asr.chat_stream(messages, ChatOptions(max_tokens=6))
    assert stream.audio_seconds == 3.0
    assert "".join(d.text for d in stream) == stream.result().text
    prompt, _ = tiny_asr.chat_prompt(messages)
    assert prompt.ids.count(24) == 750 and prompt.ids.count(25) == 2


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        (_user({"type": "audio_url", "audio_url": {"url": "http://10.0.0.1/a.wav"}}), "data: URL"),
        (_user({"type": "input_audio", "input_audio": {"data": "!!!", "format": "wav"}}), "base64"),
        (_user({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}), "image_url"),
        ([{"role": "tool", "content": "x"}], "role"),
        ([], "non-empty"),
        (
            [
                {"role": "system", "content": "Be brief."},
                *_user({"type": "input_audio", "input_audio": {"data": _wav_b64(), "format": "wav"}}),
            ],
            "prompt",
        ),
    ],
)
def test_bad_chat_requests(tiny_asr, messages: list, match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        tiny_asr.chat_stream(messages)


def _transcription() -> Transcription:
    segments = [
        Segment(0, 0.0, 30.0, " Hello there.", [1100, 1200], -0.5),
        Segment(1, 30.0, 60.0, " Second part", [1300], -0.25),
        Segment(2, 60.0, 3725.5, " Last.", [1400], -1.0, "length"),
    ]
    return Transcription(" Hello there. Second part Last.", segments, "en", 3725.5, Usage(3725.5, 1140, 7))


def test_text_and_json() -> None:
    t = _transcription()
    assert format_transcription(t, "text") == t.text
    assert json.loads(format_transcription(t, "json")) == {
        "text": t.text,
        "usage": {"type": "duration", "seconds": 3725.5},
    }


def test_verbose_json_has_openai_segment_fields() -> None:
    body = json.loads(format_transcription(_transcription(), "verbose_json", temperature=0.2))
    assert body["task"] == "transcribe" and body["language"] == "en" and body["duration"] == 3725.5
    keys = ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio"]
    assert list(body["segments"][0]) == [*keys, "no_speech_prob"]
    second = body["segments"][1]
    assert (second["seek"], second["start"], second["end"], second["temperature"]) == (3000, 30.0, 60.0, 0.2)


def test_srt_and_vtt_cues_follow_segments() -> None:
    srt = format_transcription(_transcription(), "srt")
    blocks = [b.split("\n") for b in srt.strip().split("\n\n")]
    assert [b[0] for b in blocks] == ["1", "2", "3"]
    assert blocks[0][1:] == ["00:00:00,000 --> 00:00:30,000", "Hello there."]
    assert blocks[2][1] == "00:01:00,000 --> 01:02:05,500"
    vtt = format_transcription(_transcription(), "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert re.findall(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)", vtt)[1] == (
        "00:00:30.000",
        "00:01:00.000",
    )


def test_unknown_format() -> None:
    with pytest.raises(InvalidRequest) as err:
        format_transcription(_transcription(), "docx")
    assert err.value.param == "response_format"


def test_the_chat_audio_cap_bounds_all_parts_together(tiny_asr, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each part is decoded only within what the earlier parts left: N parts never hold N caps of samples."""
    import speechserve.models.voxtral_asr.pipeline as pipeline_module

    caps: list[float | None] = []
    real = pipeline_module.load_base64_audio

    def recording(data, rate, max_seconds, param):  # type: ignore[no-untyped-def]
        caps.append(max_seconds)
        return real(data, rate, max_seconds, param)

    monkeypatch.setattr(pipeline_module, "load_base64_audio", recording)
    monkeypatch.setattr(tiny_asr, "max_audio_seconds", 3.0)
    part = {"type": "input_audio", "input_audio": {"data": _wav_b64(2.0), "format": "wav"}}
    with pytest.raises(InvalidRequest, match=r"longer than 3 s") as info:
        tiny_asr.chat_prompt(_user(part, part, part))
    assert info.value.param == "messages"
    assert caps == [3.0, 1.0]  # the second part was cut at the 1 s the first one left; the third never read
