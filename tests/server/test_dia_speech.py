"""Dia over ``POST /v1/audio/speech`` with the official openai client: the golden case's waveform at 44.1 kHz,
every format, streamed == one-shot, seeds, the request extensions, voice cloning, long dialogue split at
speaker turns, and bad input answered with the documented 4xx.

The served model is golden case_a's checkpoint (tiny random Dia, nari layout, descript DAC with its encoder)
in a directory laid out as a real bundle: the Dia files plus a ``dac/`` folder.
"""

from __future__ import annotations

import base64
import io
import json
import re
import wave
from pathlib import Path

import av
import numpy as np
import openai
import pytest
from safetensors.torch import load_file

from speechserve.audio import encode_audio
from speechserve.models.dia.options import DiaOptions  # the SDK reference for cloning
from speechserve.options import SynthesisOptions
from speechserve.tts.segmentation import split_dialogue

from ._util import http_client, make_settings, openai_client, serving

pytestmark = pytest.mark.anyio

CASE = Path(__file__).parents[1] / "golden" / "dia" / "case_a"
GOLDEN = json.loads((CASE / "case.json").read_text())
GEN = GOLDEN["generation"]
GREEDY = {  # the case's settings, as request extensions
    "temperature": GEN["temperature"],
    "cfg_scale": GEN["cfg_scale"],
    "top_k": GEN["cfg_filter_top_k"],
    "max_tokens": GEN["max_tokens"],
}
TEXT = GOLDEN["inputs"]["texts"][0]  # "[S1] Hello there. [S2] Hi! (laughs)"
RATE, HOP = 44100, 512
INT16_STEP = 1 / 32768
SHORT = {"max_tokens": 40}  # 24 frames of 11.6 ms: cheap on the tiny model
LOSSY_PADDING_S = 0.1  # encoder delay / frame padding of mp3, aac and opus


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden Dia checkpoint as a served directory: the nari files and the descript DAC in ``dac/``."""
    root = tmp_path_factory.mktemp("served") / "dia-golden"
    root.mkdir()
    for name in ("config.json", "model.safetensors"):
        (root / name).symlink_to((CASE / "dia_nari" / name).resolve())
    (root / "dac").symlink_to((CASE / "dac_descript").resolve(), target_is_directory=True)
    return root


@pytest.fixture(scope="module")
async def dia_app(bundle: Path):
    async with serving(make_settings(bundle, max_frames=256, max_batch=4)) as app:
        yield app


@pytest.fixture
async def client(dia_app):
    async with openai_client(dia_app) as c:
        yield c


@pytest.fixture
async def http(dia_app):
    async with http_client(dia_app) as c:
        yield c


async def _speech(client, fmt: str = "pcm", text: str = TEXT, voice: str = "alloy", **extra):
    return await client.audio.speech.with_raw_response.create(
        model="dia-golden", voice=voice, input=text, response_format=fmt, extra_body=extra
    )


def _pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768


def _decode(data: bytes, fmt: str) -> tuple[np.ndarray, int, int]:
    """A body decoded with PyAV at its own rate → (float32 mono samples, rate, channels)."""
    if fmt == "pcm":
        return _pcm(data), RATE, 1
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.codec_context.channels
        to_flt = av.AudioResampler(format="flt", layout="mono", rate=rate)
        frames = [f for frame in container.decode(stream) for f in to_flt.resample(frame)]
        frames += to_flt.resample(None)
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    return samples, rate, channels


# ---- parity -----------------------------------------------------------------------------------------------------
async def test_golden_case_over_http_is_the_reference_waveform(client) -> None:
    """The case's text with its greedy settings → a 44.1 kHz WAV equal to the reference's waveform."""
    expected = load_file(str(CASE / "expected.safetensors"))
    frames = int(expected["num_frames"][0])
    want = expected["waveform"][0, : frames * HOP].numpy()
    response = await _speech(client, "wav", **GREEDY, stream=False)
    assert response.headers["content-type"] == "audio/wav"
    assert int(response.headers["x-usage-output-tokens"]) == frames
    assert int(response.headers["x-usage-input-tokens"]) == len(GOLDEN["inputs"]["text_bytes"][0])
    with wave.open(io.BytesIO(response.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        got = _pcm(w.readframes(w.getnframes()))
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max() + INT16_STEP
    floats = await _speech(client, "pcm_f32le", **GREEDY, stream=False)  # no int16 rounding in the way
    exact = np.frombuffer(floats.content, "<f4")
    assert exact.shape == want.shape and np.abs(exact - want).max() <= 1e-4 * np.abs(want).max()


# ---- formats, delivery, seeds, post-processing -------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_every_format_decodes_at_44k(client, fmt: str) -> None:
    reference = _pcm((await _speech(client, "pcm", seed=3, stream=False, **SHORT)).content)
    response = await _speech(client, fmt, seed=3, **SHORT)
    samples, rate, channels = _decode(response.content, fmt)
    assert channels == 1 and rate == (48000 if fmt == "opus" else RATE)  # Ogg Opus always decodes at 48 kHz
    assert np.isfinite(samples).all() and np.abs(samples).max() > 0
    seconds, want = len(samples) / rate, len(reference) / RATE
    if fmt in ("mp3", "opus", "aac"):
        assert want - 0.01 <= seconds <= want + LOSSY_PADDING_S, (fmt, seconds, want)
    else:
        np.testing.assert_allclose(samples, reference, atol=2 * INT16_STEP)
    if fmt == "pcm":
        assert response.headers["content-type"] == "audio/pcm;rate=44100;channels=1;encoding=s16le"


async def test_streamed_and_sse_equal_the_one_shot_file(client) -> None:
    file = await _speech(client, "pcm", seed=4, stream=False, **SHORT)
    assert "content-length" in file.headers
    streamed = await _speech(client, "pcm", seed=4, **SHORT)
    assert "content-length" not in streamed.headers  # chunked, as generated
    assert streamed.content == file.content
    async with client.audio.speech.with_streaming_response.create(
        model="dia-golden", voice="alloy", input=TEXT, response_format="pcm",
        extra_body={"seed": 4, "stream_format": "sse", **SHORT},
    ) as response:  # fmt: skip
        events = [json.loads(line.removeprefix("data: ")) async for line in response.iter_lines() if line]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * (len(events) - 1) + ["speech.audio.done"]
    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == file.content
    assert events[-1]["usage"]["output_tokens"] == len(file.content) // 2 // HOP


async def test_same_seed_same_bytes_other_seed_other_audio(client) -> None:
    first, again, other = [
        (await _speech(client, "pcm", seed=seed, stream=False, **SHORT)).content for seed in (7, 7, 8)
    ]
    assert first == again and first != other  # default sampling (temperature 1.2): the seed decides


async def test_sample_rate_and_speed_post_process_the_44k_audio(client) -> None:
    normal = _pcm((await _speech(client, "pcm", seed=5, stream=False, max_tokens=80)).content)
    resampled = await _speech(client, "pcm", seed=5, stream=False, max_tokens=80, sample_rate=16000)
    assert resampled.headers["content-type"] == "audio/pcm;rate=16000;channels=1;encoding=s16le"
    assert abs(len(resampled.content) // 2 - len(normal) * 16000 / RATE) <= 16
    fast = _pcm((await _speech(client, "pcm", seed=5, stream=False, max_tokens=80, speed=2.0)).content)
    assert len(fast) == pytest.approx(len(normal) / 2, rel=0.05)


# ---- fields ------------------------------------------------------------------------------------------------------
async def test_voice_is_ignored_and_reported_and_no_voice_is_the_same(client, http) -> None:
    named = await _speech(
        client, "pcm", voice="alloy", seed=2, stream=False, cfg_alpha=2.0, ref_text="[S1] Hm.", **SHORT
    )
    # no presets; cfg_alpha is Voxtral's guidance; a transcript without a clip has nothing to transcribe
    assert named.headers["x-ignored-fields"] == "voice, cfg_alpha, ref_text"
    body = {"model": "dia-golden", "input": TEXT, "response_format": "pcm", "seed": 2, "stream": False}
    bare = await http.post("/v1/audio/speech", json=body | SHORT)
    assert bare.status_code == 200 and "x-ignored-fields" not in bare.headers
    assert bare.content == named.content
    voices = await http.get("/v1/audio/voices")
    assert voices.status_code == 200 and voices.json() == {"object": "list", "voices": []}


async def test_the_same_extensions_on_voxtral_report_dias_as_ignored(app) -> None:
    """The fields are one API: each model applies its own and reports the rest (here the Voxtral app)."""
    body = {"input": "Hello.", "voice": "nova", "response_format": "pcm", "stream": False, "max_tokens": 2}
    extra = {"top_p": 0.9, "top_k": 5, "cfg_scale": 2.0, "cfg_alpha": 1.5, "ref_text": "Hi."}
    async with http_client(app) as voxtral:
        response = await voxtral.post("/v1/audio/speech", json=body | extra)
    assert response.status_code == 200 and int(response.headers["x-usage-output-tokens"]) <= 2
    assert response.headers["x-ignored-fields"] == "top_p, top_k, cfg_scale, ref_text"


async def test_sampling_fields_change_the_audio(client) -> None:
    base = (await _speech(client, "pcm", **GREEDY, stream=False)).content
    for change in ({"cfg_scale": 1.0}, {"top_k": 2}):
        assert (await _speech(client, "pcm", **(GREEDY | change), stream=False)).content != base
    top_p = await _speech(client, "pcm", seed=1, top_p=0.5, stream=False, **SHORT)
    assert top_p.headers["x-ignored-fields"] == "voice"  # top_p is Dia's: applied, not ignored
    assert top_p.content != (await _speech(client, "pcm", seed=1, stream=False, **SHORT)).content
    longer = await _speech(client, "pcm", **(GREEDY | {"max_tokens": 60}), stream=False)
    assert int(longer.headers["x-usage-output-tokens"]) == 60 - 16  # BOS row + 15-step EOS countdown


async def test_voice_cloning_with_its_transcript_equals_the_sdk(client, dia_app) -> None:
    clip = (0.1 * np.random.default_rng(0).standard_normal(RATE // 2)).astype(np.float32)
    wav = encode_audio(clip, RATE, "wav")
    ref_text = "[S1] This is my voice."
    extra = GREEDY | {"max_tokens": 80, "ref_text": ref_text}
    response = await _speech(client, "pcm", text="[S1] Now say this.", stream=False,
                             ref_audio=base64.b64encode(wav).decode(), **extra)  # fmt: skip
    assert response.headers["x-ignored-fields"] == "voice"  # the clone takes precedence
    assert (
        int(response.headers["x-usage-input-tokens"])
        == len(ref_text.encode()) - 3 + len("[S1] Now say this.") - 3
    )
    pipeline = dia_app.state.registry.models[0].pipeline
    options = DiaOptions(temperature=0.0, cfg_scale=3.0, top_k=45, max_tokens=80, ref_text=ref_text)
    want = pipeline.generate("[S1] Now say this.", options, ref_audio=wav).samples
    got = _pcm(response.content)
    assert got.shape == want.shape and len(got) == (80 - 16 - 44) * HOP  # the clip's 44 frames count
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max() + INT16_STEP


# ---- long input --------------------------------------------------------------------------------------------------
DIALOGUE = (
    "[S1] Did you hear what happened at the station this morning? Everyone was talking about it. "
    "[S2] No, I was stuck in traffic for an hour. (sighs) What was it? "
    "[S1] A train arrived early, for once, and nobody was on the platform to meet it. The driver waited, "
    "looked around, and finally just left again. It was the strangest thing I have seen in years. "
    "[S2] (laughs) That sounds made up. [S1] I promise it is true."
)


def _words(segments: list[str]) -> str:
    """What is spoken, in order: every character but whitespace and speaker tags (which a split turn repeats)."""
    return "".join(re.sub(r"\[S[12]\]|\s", "", s) for s in segments)


async def test_long_dialogue_is_split_at_turns_and_every_segment_is_spoken(client, dia_app) -> None:
    pipeline = dia_app.state.registry.models[0].pipeline
    options = pipeline.speech_options({}, SynthesisOptions())
    segments = pipeline.speech_segments(DIALOGUE, options, 120)
    assert len(segments) >= 4 and all(s[:4] in ("[S1]", "[S2]") and len(s) <= 120 for s in segments)
    assert _words(segments) == _words([DIALOGUE])  # nothing dropped; a split turn repeats its tag
    response = await _speech(client, "pcm", text=DIALOGUE, seed=1, stream=False, **SHORT)
    n = len(pipeline.speech_segments(DIALOGUE, options, 400))  # the server's segment_chars
    assert int(response.headers["x-speech-segments"]) == n >= 2
    assert int(response.headers["x-usage-output-tokens"]) == 24 * n  # every segment spoke its 24 frames


async def test_segments_fit_the_1024_byte_encoder_and_never_cut_a_tag(dia_app) -> None:
    pipeline = dia_app.state.registry.models[0].pipeline
    turn = "[S2] " + " ".join(["Grüße aus Köln, schönes Wetter heute."] * 40)  # ~1500 characters, ~1600 bytes
    text = f"[S1] Short first turn. {turn} [S1] Bye."
    options = pipeline.speech_options({}, SynthesisOptions())
    segments = pipeline.speech_segments(text, options, 4096)
    sizes = [len(s.encode()) - 3 * (s.count("[S1]") + s.count("[S2]")) for s in segments]
    assert len(segments) >= 2 and max(sizes) <= 1024
    assert all(s.startswith(("[S1] ", "[S2] ")) for s in segments) and _words(segments) == _words([text])
    assert all(pipeline.text_ids(s, options) for s in segments)  # Dia's own encoder check accepts each
    ref_text = "[S1] " + "x" * 400  # 402 encoder bytes, read again in front of every segment
    cloning = pipeline.speech_options({"ref_audio": object(), "ref_text": ref_text}, SynthesisOptions())
    with_ref = pipeline.speech_segments(text, cloning, 4096)
    assert max(len(s.encode()) - 3 for s in with_ref) + 402 <= 1024
    assert all(pipeline.text_ids(s, cloning, cloning=True) for s in with_ref)
    assert split_dialogue("[S1] a [S2] b", 13) == ["[S1] a [S2] b"]  # turns share a segment while it fits
    assert split_dialogue("[S1] a [S2] b", 10) == ["[S1] a", "[S2] b"]  # not "[S1] a [S2" + "] b"


SCRIPTS = [
    DIALOGUE,
    "Narration before any tag. [S1] Then a turn, with a clause; and more. [S2] Short.",
    "[S1] " + "Supercalifragilistic" * 8 + " end. [S2] Überraschung! Ça va? Ja, natürlich.",
    "[S2] 日本語の文です。これも文です！[S1] 最後の文？",
]


def _encoder_bytes(text: str) -> int:
    return len(text.encode()) - 3 * (text.count("[S1]") + text.count("[S2]"))


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(("max_chars", "max_bytes"), [(12, None), (40, None), (400, 30), (4096, 1024)])
def test_dialogue_segments_keep_every_word_and_their_limits(script: str, max_chars: int, max_bytes) -> None:
    segments = split_dialogue(script, max_chars, max_bytes, _encoder_bytes)
    assert _words(segments) == _words([script])
    assert all(s and s == s.strip() and len(s) <= max_chars for s in segments)
    assert max_bytes is None or all(_encoder_bytes(s) <= max_bytes for s in segments)
    starts_tagged = script.startswith("[S")
    assert all(s.startswith(("[S1] ", "[S2] ")) for s in segments) == starts_tagged


# ---- errors ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"input": "   "}, "input"),
        ({"temperature": 3}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"cfg_scale": -1}, "cfg_scale"),
        ({"max_tokens": 10}, "max_tokens"),  # Dia needs the BOS row and its 15-step delay before a frame
        ({"sample_rate": 4000}, "sample_rate"),
        ({"speed": 9}, "speed"),
        ({"stream": False, "stream_format": "sse"}, "stream"),
        (
            {"ref_audio": base64.b64encode(encode_audio(np.zeros(4410, np.float32), RATE, "wav")).decode()},
            "ref_text",
        ),
        ({"ref_audio": "bm90IGF1ZGlv", "ref_text": "[S1] Hi."}, "ref_audio"),  # base64 of "not audio"
    ],
)
async def test_bad_input_is_a_400_naming_the_field(http, extra: dict, param: str) -> None:
    body = {"model": "dia-golden", "input": TEXT, "voice": "alloy"} | extra
    response = await http.post("/v1/audio/speech", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_an_over_long_reference_clip_is_a_400_on_ref_audio(http) -> None:
    rate = 8000
    clip = (0.1 * np.random.default_rng(1).standard_normal(36 * rate)).astype(np.float32)  # 36 s > 35.5 s
    body = {
        "model": "dia-golden", "input": "[S1] Hi.", "voice": "alloy", "ref_text": "[S1] A long one.",
        "ref_audio": "data:audio/wav;base64," + base64.b64encode(encode_audio(clip, rate, "wav")).decode(),
    }  # fmt: skip
    response = await http.post("/v1/audio/speech", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "ref_audio" and "35." in error["message"]


async def test_unknown_model_is_a_404(client) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.audio.speech.create(model="dia-2", voice="alloy", input=TEXT)
    assert info.value.body["code"] == "model_not_found" and "dia-golden" in info.value.body["message"]


async def test_empty_input_through_the_client_is_a_400(client) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.speech.create(model="dia-golden", voice="alloy", input="")
    assert info.value.body["param"] == "input"
