"""Bad speech-to-text input, each answered with the documented 4xx in OpenAI's envelope, the server still
serving afterwards; network-policy refusals happen before any connection is opened."""

from __future__ import annotations

import base64
import socket

import httpx
import pytest

from speechserve.audio import encode_audio
from speechserve.server.chat.media import MediaFetcher

from ._util import wav_bytes

pytestmark = pytest.mark.anyio

WAV = wav_bytes(1.0)
EMPTY_WAV = encode_audio(__import__("numpy").zeros(0, "float32"), 16000, "wav")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
OK_FORM = {"model": "whisper-1", "max_tokens": "2"}

# (case, form fields, file (name, bytes) or None, status, code, param)
TRANSCRIPTION_CASES = [
    ("corrupt file", {}, ("a.wav", b"RIFF\x00\x00garbage" * 50), 400, "invalid_audio", "file"),
    ("zero-length file", {}, ("a.wav", b""), 400, "invalid_audio", "file"),
    ("zero-length audio", {}, ("a.wav", EMPTY_WAV), 400, "invalid_audio", "file"),
    ("unsupported format (text)", {}, ("notes.txt", b"just some words\n" * 20), 400, "unsupported_format", "file"),
    ("unsupported format (image)", {}, ("photo.png", PNG), 400, "unsupported_format", "file"),
    ("oversize upload", {}, ("big.wav", bytes(2_100_000)), 413, "file_too_large", "file"),
    ("no file", {}, None, 400, "invalid_value", "file"),
    ("unknown model", {"model": "whisper-9"}, ("a.wav", WAV), 404, "model_not_found", "model"),
    ("TTS model", {"model": "tts-1"}, ("a.wav", WAV), 400, "unsupported_task", "model"),
    ("bad response_format", {"response_format": "docx"}, ("a.wav", WAV), 400, "invalid_value", "response_format"),
    ("temperature too high", {"temperature": "1.5"}, ("a.wav", WAV), 400, "invalid_value", "temperature"),
    ("language not ISO-639-1", {"language": "english"}, ("a.wav", WAV), 400, "invalid_value", "language"),
    ("word timestamps", {"timestamp_granularities[]": "word"}, ("a.wav", WAV), 400, "unsupported", "timestamp_granularities"),
    ("stream not a bool", {"stream": "maybe"}, ("a.wav", WAV), 400, "invalid_value", "stream"),
]  # fmt: skip


async def test_transcription_bad_input_table_then_a_normal_request(asr_http) -> None:
    for case, fields, upload, status, code, param in TRANSCRIPTION_CASES:
        files = {"file": upload} if upload else {"other": ("x.txt", b"x")}
        response = await asr_http.post("/v1/audio/transcriptions", data=OK_FORM | fields, files=files)
        assert response.status_code == status, (case, response.text)
        error = response.json()["error"]
        assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error"), case
        assert error["message"], case
    ok = await asr_http.post("/v1/audio/transcriptions", data=OK_FORM, files={"file": ("a.wav", WAV)})
    assert ok.status_code == 200 and ok.json()["text"]


async def test_unknown_model_lists_the_valid_ones(asr_app, asr_client) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        await asr_client.audio.transcriptions.create(model="whisper-9", file=("a.wav", WAV))
    for name in ("whisper-1", "tts-1", asr_app.state.registry.models[0].id):
        assert name in err.value.message


async def test_not_multipart_and_oversize_by_content_length(asr_http) -> None:
    response = await asr_http.post("/v1/audio/transcriptions", json={"file": "x"})
    assert response.status_code == 400 and "multipart" in response.json()["error"]["message"]
    huge = {"content-type": "multipart/form-data; boundary=x", "content-length": str(50_000_000)}
    response = await asr_http.post("/v1/audio/transcriptions", content=b"--x--\r\n", headers=huge)
    assert response.status_code == 413  # refused from the header, before reading the body


async def test_translation_says_why_it_is_not_served(asr_http) -> None:
    response = await asr_http.post("/v1/audio/translations", data=OK_FORM, files={"file": ("a.wav", WAV)})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_task" and error["param"] == "model"
    assert "[TRANSCRIBE]" in error["message"] and "/v1/chat/completions" in error["message"]
    missing = await asr_http.post(
        "/v1/audio/translations", data={"model": "nope"}, files={"file": ("a.wav", WAV)}
    )
    assert missing.status_code == 404


def _chat(part: dict | str, **extra) -> dict:
    return {"model": "whisper-1", "messages": [{"role": "user", "content": [part]}], "max_tokens": 2} | extra


def _url(url: str) -> dict:
    return {"type": "audio_url", "audio_url": {"url": url}}


B64 = base64.b64encode(WAV).decode()
CHAT_CASES = [
    ("file:// without the allow-list", _chat(_url("file:///etc/hostname")), 400, "invalid_audio_url", "messages"),
    ("http to 10.0.0.0/8", _chat(_url("http://10.1.2.3/talk.wav")), 400, "invalid_audio_url", "messages"),
    ("http to localhost by name", _chat(_url("http://localhost/talk.wav")), 400, "invalid_audio_url", "messages"),
    ("https to link-local metadata", _chat(_url("https://169.254.169.254/latest")), 400, "invalid_audio_url", "messages"),
    ("http to IPv6 loopback", _chat(_url("http://[::1]:8080/a.wav")), 400, "invalid_audio_url", "messages"),
    ("http to multicast", _chat(_url("http://224.0.0.1/a.wav")), 400, "invalid_audio_url", "messages"),
    ("ftp URL", _chat(_url("ftp://example.com/a.wav")), 400, "invalid_audio_url", "messages"),
    ("corrupt input_audio", _chat({"type": "input_audio", "input_audio": {"data": base64.b64encode(b"junk" * 99).decode(), "format": "wav"}}), 400, "invalid_audio", "messages"),
    ("empty input_audio", _chat({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}), 400, "invalid_value", "messages"),
    ("unsupported input_audio format", _chat({"type": "input_audio", "input_audio": {"data": B64, "format": "xyz"}}), 400, "unsupported_format", "messages"),
    ("bad base64", _chat(_url("data:audio/wav;base64,@@@@")), 400, "invalid_value", "messages"),
    ("oversize input_audio", _chat({"type": "input_audio", "input_audio": {"data": "A" * 2_900_000, "format": "wav"}}), 413, "file_too_large", "messages"),
    ("image part", _chat({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}), 400, "invalid_value", "messages"),
    ("unknown model", _chat(_url(f"data:audio/wav;base64,{B64}"), model="gpt-4o"), 404, "model_not_found", "model"),
    ("TTS model", _chat(_url(f"data:audio/wav;base64,{B64}"), model="tts-1"), 400, "unsupported_task", "model"),
    ("n > 1", _chat(_url(f"data:audio/wav;base64,{B64}"), n=2), 400, "invalid_value", "n"),
    ("no messages", {"model": "whisper-1", "messages": []}, 400, "invalid_value", "messages"),
]  # fmt: skip


class _Recorder(httpx.AsyncBaseTransport):
    """A transport that records instead of connecting: the policy must refuse before it is reached."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, content=WAV)


async def test_chat_bad_input_table_then_a_normal_request(asr_app, asr_http) -> None:
    service = asr_app.state.chat
    recorder = _Recorder()
    real = service.fetcher
    service.fetcher = MediaFetcher(asr_app.state.settings, transport=recorder)  # the real DNS resolver
    try:
        for case, body, status, code, param in CHAT_CASES:
            response = await asr_http.post("/v1/chat/completions", json=body)
            assert response.status_code == status, (case, response.text)
            error = response.json()["error"]
            assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error"), (
                case
            )
    finally:
        service.fetcher = real
    assert recorder.requests == []  # no refused URL ever reached a connection
    ok = await asr_http.post("/v1/chat/completions", json=_chat(_url(f"data:audio/wav;base64,{B64}")))
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]


async def test_http_to_loopback_is_refused_without_connecting(asr_http) -> None:
    """A real listener on 127.0.0.1: the request is refused and the listener never sees a connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        response = await asr_http.post(
            "/v1/chat/completions", json=_chat(_url(f"http://127.0.0.1:{port}/a.wav"))
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_audio_url"
        with pytest.raises(TimeoutError):
            listener.accept()


async def test_speech_on_the_asr_model_is_refused(asr_http) -> None:
    response = await asr_http.post("/v1/audio/speech", json={"model": "whisper-1", "input": "Hi."})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_task"
    voices = await asr_http.get("/v1/audio/voices", params={"model": "whisper-1"})
    assert voices.status_code == 400
