"""Unknown request fields with odd names (not Latin-1, CR/LF, huge, lone surrogates …) on every POST route,
streamed and not: never a 5xx, ``X-Ignored-Fields`` stays a short ASCII header that decodes back to the
names, JSON bodies list them verbatim, and every in-flight gauge and ``in_flight`` entry is back to zero —
also when building the response fails after generation started. Input made of whitespace and zero-width
characters is a 400 like empty input."""

from __future__ import annotations

import json
from urllib.parse import unquote

import httpx
import pytest

from speechserve.server.headers import MAX_IGNORED_HEADER, ignored_fields_header

from ._util import BASE, wav_bytes

pytestmark = pytest.mark.anyio

ODD_NAMES = [
    "ключ",  # not Latin-1
    "a\r\nX-Injected: 1",  # CR/LF: would split the header
    "k" * 100_000,  # longer than any client accepts in a header
    "mic 🎤, é",  # astral, comma, space, Latin-1
    "\ud800",  # a lone surrogate: valid JSON text, refused by pydantic (400); invalid UTF-8 in a form
    "%41",  # looks like an escape already
    "",
]
SPEECH = {"input": "Hi.", "response_format": "pcm", "max_tokens": 2}
SPEECH_DELIVERIES = [{"stream": False}, {}, {"stream": True}]  # a file, raw audio as generated, SSE
CHAT = {"model": "whisper-1", "max_tokens": 2, "messages": [{"role": "user", "content": "Hello?"}]}
WAV = wav_bytes(0.5)


def _json(body: dict) -> dict:
    """Raw JSON (ASCII escapes, so a lone surrogate can be sent) as ``httpx.post`` keyword arguments."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


def _multipart(fields: dict[str, str]) -> dict:
    """A multipart upload built by hand, so that any field name can be sent: its UTF-8 bytes (a lone
    surrogate as the invalid bytes ``surrogatepass`` gives), CR, LF and quotes escaped as browsers do."""
    parts = []
    for name, value in fields.items():
        raw = name.encode("utf-8", "surrogatepass")
        raw = raw.replace(b"\r", b"%0D").replace(b"\n", b"%0A").replace(b'"', b"%22")
        parts.append(b'--x\r\nContent-Disposition: form-data; name="' + raw + b'"\r\n\r\n' + value.encode())
    file = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + WAV
    body = b"\r\n".join([*parts, file, b"--x--\r\n"])
    return {"content": body, "headers": {"content-type": "multipart/form-data; boundary=x"}}


def _check_header(response, name: str) -> None:
    if name == "\ud800":  # pydantic refuses the whole body: a 400 in the envelope
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_value"
        return
    assert response.status_code == 200, (name[:20], response.text[:200])
    header = response.headers.get("x-ignored-fields", "")
    assert header.isascii() and "\r" not in header and "\n" not in header, header[:80]
    assert len(header) <= MAX_IGNORED_HEADER
    listed = [unquote(n, errors="surrogatepass") for n in header.split(", ")]
    too_long = listed[-1] == "..." and len(name) > MAX_IGNORED_HEADER
    assert name in listed or too_long, (name[:20], header[:80])


def _gauges_are_zero(app, text: str) -> None:
    for gauge in ("speechserve_speech_in_flight", "speechserve_text_in_flight"):
        assert f"\n{gauge} 0.0" in text, gauge
    assert all(not m.in_flight for m in app.state.registry.models)


async def test_odd_field_names_on_every_route(asr_app, asr_http) -> None:
    for name in ODD_NAMES:
        for delivery in SPEECH_DELIVERIES:
            response = await asr_http.post("/v1/audio/speech", **_json(SPEECH | delivery | {name: 1}))
            _check_header(response, name)
        for stream in (False, True):
            chat = CHAT | {"stream": stream, name: 1}
            response = await asr_http.post("/v1/chat/completions", **_json(chat))
            _check_header(response, name)
            if not stream and response.status_code == 200:
                assert response.json()["ignored_fields"] == [name]
            form = {"max_tokens": "2", "stream": str(stream).lower(), name: "1"}
            response = await asr_http.post("/v1/audio/transcriptions", **_multipart(form))
            assert response.status_code < 500, (name[:20], stream, response.text[:200])
            if len(name) > 1000:  # the multipart parser refuses a part header this long: a 400
                assert response.status_code == 400 and response.json()["error"]["message"]
                continue
            assert response.status_code == 200, (name[:20], stream, response.text[:200])
            header = response.headers["x-ignored-fields"]
            assert header.isascii() and "\r" not in header and "\n" not in header
            if not stream:
                assert len(response.json()["ignored_fields"]) == 1, name[:20]
    _gauges_are_zero(asr_app, (await asr_http.get("/metrics")).text)


async def test_a_failure_while_building_the_response_releases_the_generation(asr_app, monkeypatch) -> None:
    """Whatever breaks between submitting the generation and handing over the response, it is accounted."""
    from speechserve.server.chat import serving as chat_serving
    from speechserve.server.speech import responses
    from speechserve.server.transcription import serving as transcription_serving

    def broken(*args, **kwargs):
        raise RuntimeError("the response could not be built")

    for module, name in [
        (responses, "audio_stream"), (responses, "sse_stream"), (responses, "complete_file"),
        (chat_serving, "ClosingStreamingResponse"), (chat_serving, "JSONResponse"),
        (transcription_serving, "ClosingStreamingResponse"),
    ]:  # fmt: skip
        monkeypatch.setattr(module, name, broken)
    transport = httpx.ASGITransport(app=asr_app, raise_app_exceptions=False)  # the 500 reaches the client
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        await _answer_500s(http)
        monkeypatch.undo()
        _gauges_are_zero(asr_app, (await http.get("/metrics")).text)


async def _answer_500s(http: httpx.AsyncClient) -> None:
    for delivery in SPEECH_DELIVERIES:
        response = await http.post("/v1/audio/speech", json=SPEECH | delivery)
        assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    for stream in (False, True):
        response = await http.post("/v1/chat/completions", json=CHAT | {"stream": stream})
        assert response.status_code == 500
    files = {"file": ("a.wav", WAV)}
    response = await http.post("/v1/audio/transcriptions", data={"stream": "true"}, files=files)
    assert response.status_code == 500


def test_the_header_is_token_safe_and_bounded() -> None:
    header = ignored_fields_header(["top_p", "ключ", "a,b", "x y"])
    assert header == "top_p, %D0%BA%D0%BB%D1%8E%D1%87, a%2Cb, x%20y"
    long = ignored_fields_header(["a"] + ["b" * 600] * 3)
    assert long.endswith(", ...") and len(long) <= MAX_IGNORED_HEADER and long.startswith("a, bbb")


BLANK = ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", " \u200b \n\t\u2060 ", "\ufeff\u00a0\u200d"]


async def test_zero_width_input_is_blank(http) -> None:
    for text in BLANK:
        response = await http.post("/v1/audio/speech", json=SPEECH | {"input": text})
        assert response.status_code == 400, repr(text)
        assert response.json()["error"]["param"] == "input"
    visible = await http.post("/v1/audio/speech", json=SPEECH | {"input": "\u200bHi\u200b.", "stream": False})
    assert visible.status_code == 200 and visible.content
