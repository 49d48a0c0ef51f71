"""The request gate answers from the headers, before any body byte is read: a missing key is a 401 and an
over-long declared body a 413, on every POST route, even for a 10 GB ``Content-Length``; a body without
``Content-Length`` is counted as it streams in and stopped at the cap. In process (a body generator that
records what the app pulled) and over a real socket (the reply arrives although no body byte was sent)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ._util import LiveServer, http_client, make_settings, serving, wav_bytes

from speechserve.server import create_app  # isort: skip

pytestmark = pytest.mark.anyio

KEY = "sk-gate"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"content-type": "application/json"}
MULTIPART = {"content-type": "multipart/form-data; boundary=x"}
FILE_PART = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
"""The start of a multipart body whose file never ends (the parser keeps reading)."""
TEN_GB = str(10 * 10**9)
CHUNK = 64 * 1024
POSTS = [  # (route, content type, error code of a body over the cap)
    ("/v1/audio/speech", JSON, "request_too_large"),
    ("/v1/chat/completions", JSON, "request_too_large"),
    ("/v1/audio/transcriptions", MULTIPART, "file_too_large"),
    ("/v1/audio/translations", MULTIPART, "file_too_large"),
]


class Body:
    """A request body of ``total`` bytes (``head`` then spaces) that counts how much the server pulled."""

    def __init__(self, total: int, head: bytes = b"") -> None:
        self.total, self.head, self.sent = total, head, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.head:
            self.sent += len(self.head)
            yield self.head
        while self.sent < self.total:
            chunk = b" " * min(CHUNK, self.total - self.sent)
            self.sent += len(chunk)
            yield chunk


@pytest.fixture(scope="module")
async def gated_app(tiny_asr_checkpoint: Path, tiny_checkpoint: Path):
    """Both models, API keys, JSON bodies capped at 0.5 MB and uploads at 1 MB."""
    models = [str(tiny_asr_checkpoint), str(tiny_checkpoint)]
    settings = make_settings(
        tiny_checkpoint, model=models, api_keys=[KEY], max_body_mb=0.5, max_upload_mb=1.0
    )
    async with serving(settings) as app:
        yield app


async def test_no_key_is_401_before_the_body_is_read(gated_app) -> None:
    async with http_client(gated_app) as http:
        for route, content_type, _ in POSTS:
            for declared in ({"content-length": TEN_GB}, {}):  # a 10 GB promise, or chunked
                body = Body(20 * 10**6)
                response = await http.post(route, content=body, headers=content_type | declared)
                assert response.status_code == 401, (route, response.text)
                assert response.json()["error"]["code"] == "invalid_api_key"
                assert body.sent == 0, (route, declared, body.sent)


async def test_declared_oversize_is_413_before_the_body_is_read(gated_app) -> None:
    async with http_client(gated_app) as http:
        for route, content_type, code in POSTS:
            body = Body(20 * 10**6)
            headers = AUTH | content_type | {"content-length": TEN_GB}
            response = await http.post(route, content=body, headers=headers)
            assert response.status_code == 413, (route, response.text)
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["code"] == code, route
            assert body.sent == 0, (route, body.sent)


async def test_undeclared_oversize_is_stopped_while_streaming_in(gated_app) -> None:
    async with http_client(gated_app) as http:
        for route, content_type, code in POSTS:
            head = FILE_PART if content_type is MULTIPART else b'{"input": "'
            body = Body(20 * 10**6, head)  # chunked: no Content-Length to refuse it by
            response = await http.post(route, content=body, headers=AUTH | content_type)
            assert response.status_code == 413, (route, response.text)
            assert response.json()["error"]["code"] == code, route
            cap = 500_000 if code == "request_too_large" else 1_000_000 + 64 * 1024
            assert cap < body.sent <= cap + CHUNK + len(head), (route, body.sent)  # up to the cap, no further


async def test_bodies_under_the_caps_still_work(gated_app) -> None:
    async with http_client(gated_app) as http:
        speech = {"input": "Hi.", "response_format": "wav", "stream": False}
        ok = await http.post("/v1/audio/speech", json=speech, headers=AUTH)
        assert ok.status_code == 200 and ok.content[:4] == b"RIFF"
        files = {"file": ("a.wav", wav_bytes(1.0))}
        text = await http.post(
            "/v1/audio/transcriptions", data={"max_tokens": "2"}, files=files, headers=AUTH
        )
        assert text.status_code == 200 and "text" in text.json()
        big = {"input": "Hi.", "padding": "x" * 600_000}  # over max_body_mb, Content-Length declared
        refused = await http.post("/v1/audio/speech", json=big, headers=AUTH)
        assert refused.status_code == 413 and refused.json()["error"]["param"] is None
        text = (await http.get("/metrics")).text
    assert 'speechserve_errors_total{type="request_too_large"}' in text


def _raw_exchange(url: str, head: str) -> tuple[int, dict]:
    """Send only the request head over a socket (no body byte) and read the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    status = int(reply.split(b" ", 2)[1])
    return status, json.loads(reply.split(b"\r\n\r\n", 1)[1])


def _length(reply: bytes) -> int:
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 1 << 30


def test_over_a_socket_the_reply_comes_without_the_body(tiny_checkpoint: Path) -> None:
    app = create_app(make_settings(tiny_checkpoint, api_keys=[KEY]))
    with LiveServer(app) as server:
        for route in ("/v1/audio/speech", "/v1/chat/completions", "/v1/audio/transcriptions"):
            head = f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            status, body = _raw_exchange(server.url, head + f"Content-Length: {TEN_GB}\r\n\r\n")
            assert (status, body["error"]["code"]) == (401, "invalid_api_key"), route
            authed = head + f"Authorization: Bearer {KEY}\r\nContent-Length: {TEN_GB}\r\n\r\n"
            status, body = _raw_exchange(server.url, authed)
            assert status == 413 and body["error"]["code"] in ("request_too_large", "file_too_large"), route
