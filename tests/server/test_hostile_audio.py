"""Hostile audio through the real app: audio bombs on every way audio comes in (upload, ``input_audio``,
``data:`` URL, fetched URL, local file) answer the over-length 400 while holding about the cap's worth of
samples (tracemalloc sees every numpy allocation), and malformed or disguised audio URLs are a 400
``invalid_audio_url`` before any DNS query or connection."""

from __future__ import annotations

import base64
import io
import struct
import tracemalloc
from fractions import Fraction

import av
import httpx
import numpy as np
import pytest

from speechserve.server.chat.media import MAX_URL_CHARS, MediaFetcher

from ._util import wav_bytes

pytestmark = pytest.mark.anyio

CAP = 10.0  # max_audio_seconds for these tests: the 30-minute bomb is 180 times over it
BOMB_SECONDS = 1800.0
CAP_BYTES = int(CAP * 16000) * 4  # the cap's worth of 16 kHz float32 samples: 640 kB
FULL_BYTES = int(BOMB_SECONDS * 16000) * 4  # what decoding the whole bomb holds: 115 MB
BUDGET = 3 * CAP_BYTES + 1_000_000  # the cap, its concatenation, one FLAC frame, the request's own objects
TRANSCRIBE = {"model": "whisper-1", "max_tokens": "2"}
PUBLIC = "93.184.216.34"


def silent_flac(seconds: float, declare: bool, rate: int = 16000) -> bytes:
    """Mono FLAC of silence in 65535-sample frames (10 kB for 30 min); ``declare=False`` zeroes STREAMINFO's
    total-samples field, so the length is only known by decoding it."""
    buf, block = io.BytesIO(), 65535
    with av.open(buf, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.codec_context.format = "s16"
        stream.codec_context.options = {"frame_size": str(block)}
        zeros, total = np.zeros((1, block), np.int16), round(seconds * rate)
        for pts in range(0, total, block):
            frame = av.AudioFrame.from_ndarray(zeros[:, : min(block, total - pts)], "s16", "mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    flac = buf.getvalue()
    if declare:
        return flac
    head = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1)  # STREAMINFO: rate, channels, bits, count
    return flac[:18] + head.to_bytes(8, "big") + flac[26:]


@pytest.fixture(scope="module", params=[True, False], ids=["declared", "undeclared"])
def bomb(request) -> bytes:
    return silent_flac(BOMB_SECONDS, declare=request.param)


@pytest.fixture
def capped(asr_app, monkeypatch):
    monkeypatch.setattr(asr_app.state.registry.models[0].pipeline, "max_audio_seconds", CAP)


async def traced_post(http: httpx.AsyncClient, url: str, **kwargs) -> tuple[httpx.Response, int]:
    """The response, and the peak of traced allocations while the app answered."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        response = await http.post(url, **kwargs)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return response, peak


def _envelope(response: httpx.Response) -> tuple:
    error = response.json()["error"]
    return response.status_code, error["type"], error["code"], error["param"]


def _chat(*parts: dict) -> dict:
    return {"model": "whisper-1", "messages": [{"role": "user", "content": list(parts)}], "max_tokens": 2}


def _input_audio(data: bytes, fmt: str) -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def _audio_url(url: str) -> dict:
    return {"type": "audio_url", "audio_url": {"url": url}}


async def test_upload_bomb_is_the_over_length_400_within_the_cap(asr_http, capped, bomb) -> None:
    assert len(bomb) < 20_000
    too_long = await asr_http.post(
        "/v1/audio/transcriptions", data=TRANSCRIBE, files={"file": ("a.wav", wav_bytes(CAP + 1))}
    )
    response, peak = await traced_post(
        asr_http, "/v1/audio/transcriptions", data=TRANSCRIBE, files={"file": ("bomb.flac", bomb)}
    )
    assert (
        _envelope(response) == _envelope(too_long) == (400, "invalid_request_error", "invalid_value", "file")
    )
    assert f"the limit is {CAP:g} s" in response.json()["error"]["message"]
    assert peak < BUDGET < FULL_BYTES / 20, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("source", ["input_audio", "data URL", "http URL", "file URL"])
async def test_chat_bomb_is_the_over_length_400_within_the_cap(
    asr_app, asr_http, capped, bomb, source: str, tmp_path, monkeypatch
) -> None:
    service = asr_app.state.chat
    settings = asr_app.state.settings.model_copy(update={"allowed_local_media_path": str(tmp_path)})
    (tmp_path / "bomb.flac").write_bytes(bomb)

    async def dns(host: str, port: int) -> list[str]:
        return [PUBLIC]

    serve = httpx.MockTransport(lambda request: httpx.Response(200, content=bomb))
    monkeypatch.setattr(service, "fetcher", MediaFetcher(settings, resolver=dns, transport=serve))
    part = {
        "input_audio": _input_audio(bomb, "flac"),
        "data URL": _audio_url("data:audio/flac;base64," + base64.b64encode(bomb).decode()),
        "http URL": _audio_url("https://audio.example/bomb.flac"),
        "file URL": _audio_url(f"file://{tmp_path}/bomb.flac"),
    }[source]
    too_long = await asr_http.post(
        "/v1/chat/completions", json=_chat(_input_audio(wav_bytes(CAP + 1), "wav"))
    )
    response, peak = await traced_post(asr_http, "/v1/chat/completions", json=_chat(part))
    expected = (400, "invalid_request_error", "invalid_value", "messages")
    assert _envelope(response) == _envelope(too_long) == expected
    assert peak < BUDGET, f"peak {peak / 1e6:.1f} MB"


def _wav_1hz(n: int) -> bytes:
    """An 8-bit mono WAV whose header says 1 Hz: ``n`` bytes are ``n`` seconds."""
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 1, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", n) + bytes([128]) * n
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("seconds", "code"),
    [(4000, "invalid_value"), (1000, "invalid_audio")],  # over the 30-min cap by its header; a 1 Hz rate
)
async def test_a_1_hz_wav_in_a_chat_is_refused_without_resampling(asr_http, seconds: int, code: str) -> None:
    body = _chat(_input_audio(_wav_1hz(seconds), "wav"))
    response, peak = await traced_post(asr_http, "/v1/chat/completions", json=body)
    assert _envelope(response) == (400, "invalid_request_error", code, "messages")
    assert peak < 3_000_000  # resampled to 16 kHz it would be 64 MB (1000 s) or 256 MB (4000 s)


MALFORMED_URLS = [
    "http://[::1",
    "http://xn--/",
    "http://audio\x00.example/a.wav",
    "http://audio⒈example/a.wav",
    "http://" + "a" * 65_000 + ".example/a.wav",
    "http://audio.example/a.wav\r\nX-Injected: 1",
    "http://audio.example\r\n/a.wav",
    "https://audio.example/\x7f.wav",
    "http://audio.example:99999/a.wav",
    "http://audio.example:0/a.wav",
    "http://audio example/a.wav",
    "http://%00/a.wav",
    "http://" + "a" * 64 + ".example/a.wav",
    "http:///a.wav",
    "http://[::1]junk/a.wav",
    "http://[2001:db8::1%eth0]/a.wav",
]
DISGUISED_PRIVATE = [
    "http://[2002:7f00:1::1]/a.wav",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/latest",  # 6to4 of 169.254.169.254
    "http://[64:ff9b::a9fe:a9fe]/latest",  # NAT64 of 169.254.169.254
    "http://[64:ff9b::a00:1]/a.wav",  # NAT64 of 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/a.wav",  # Teredo, client 127.0.0.1 (obfuscated)
    "http://[::ffff:7f00:1]/a.wav",  # IPv4-mapped 127.0.0.1, hex spelling
    "http://[::ffff:192.168.0.1]/a.wav",
    "http://nat64.example/a.wav",  # a name whose AAAA is NAT64 of 10.0.0.1
    "http://sixtofour.example/a.wav",  # a name whose AAAA is 6to4 of 192.168.1.1
]
DNS = {
    "audio.example": [PUBLIC],
    "nat64.example": ["64:ff9b::a00:1"],
    "sixtofour.example": ["2002:c0a8:101::1"],
}


async def test_malformed_and_disguised_urls_are_400_before_any_lookup(asr_app, asr_http, monkeypatch) -> None:
    asked: list[str] = []
    contacted: list[httpx.Request] = []

    async def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        return DNS[host]

    def serve(request: httpx.Request) -> httpx.Response:
        contacted.append(request)
        return httpx.Response(200, content=wav_bytes(1.0))

    fetcher = MediaFetcher(asr_app.state.settings, resolver=dns, transport=httpx.MockTransport(serve))
    monkeypatch.setattr(asr_app.state.chat, "fetcher", fetcher)
    for url in MALFORMED_URLS + DISGUISED_PRIVATE:
        response = await asr_http.post("/v1/chat/completions", json=_chat(_audio_url(url)))
        assert _envelope(response) == (400, "invalid_request_error", "invalid_audio_url", "messages"), (
            url[:80],
            response.text[:300],
        )
    assert asked == ["nat64.example", "sixtofour.example"]  # only well-formed names were looked up
    assert contacted == []
    long_url = await asr_http.post("/v1/chat/completions", json=_chat(_audio_url(MALFORMED_URLS[4])))
    assert f"at most {MAX_URL_CHARS}" in long_url.json()["error"]["message"]
    ok = await asr_http.post("/v1/chat/completions", json=_chat(_audio_url("http://audio.example/a.wav")))
    assert ok.status_code == 200 and len(contacted) == 1  # the same fetcher still fetches a good URL
