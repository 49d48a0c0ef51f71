"""Start-up in the background: ``/health`` answers 503 with each model's progress while the models load and
200 once they are up, the API answers 503 (``Retry-After``) meanwhile, and each load is logged with its
duration. A failed load keeps the server answering 503 without its reason. No response to an
unauthenticated client names a path of the machine. ``GET /v1/audio/models`` lists the speech models."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import anyio
import pytest

from speechserve.server import ServerSettings, create_app
from speechserve.server.state import load_served_model, request_names

from ._util import http_client, make_settings, serving, wait_until, wav_bytes

pytestmark = pytest.mark.anyio

SPEECH = {"input": "Hi.", "response_format": "wav", "stream": False}


async def test_health_reports_loading_then_ok(tiny_checkpoint: Path, caplog) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_loader(settings: ServerSettings, index: int):
        started.set()
        assert release.wait(timeout=120)
        return load_served_model(settings, index)

    caplog.set_level(logging.INFO, logger="speechserve.server")
    settings = make_settings(tiny_checkpoint)
    async with serving(settings, ready=False, loader=slow_loader) as app, http_client(app) as http:
        assert await anyio.to_thread.run_sync(started.wait, 60)
        loading = await http.get("/health")
        assert loading.status_code == 503
        body = loading.json()
        assert body["status"] == "loading" and body["models"] == [tiny_checkpoint.name]
        assert body["progress"] == [{"id": tiny_checkpoint.name, "state": "loading", "seconds": None}]
        for request in (http.post("/v1/audio/speech", json=SPEECH), http.get("/v1/models")):
            refused = await request
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            error = refused.json()["error"]
            assert (error["code"], error["type"]) == ("loading", "server_error")
            assert "0 of 1" in error["message"]
        assert (await http.get("/metrics")).status_code == 200
        release.set()
        await app.state.startup.wait()
        ready = await http.get("/health")
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        (progress,) = ready.json()["progress"]
        assert progress["state"] == "ready" and progress["seconds"] > 0
        assert (await http.post("/v1/audio/speech", json=SPEECH)).status_code == 200
    messages = [r.getMessage() for r in caplog.records]
    name = tiny_checkpoint.name
    for expected in (f"loading model {name} (1 of 1)", f"loaded model {name} in", f"warmed up model {name}"):
        assert any(m.startswith(expected) for m in messages), (expected, messages)


async def test_a_failed_load_is_a_503_that_names_no_path(tiny_checkpoint: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret-dir" / "weights.safetensors"

    def failing_loader(settings: ServerSettings, index: int):
        raise FileNotFoundError(f"no such file: {secret}")

    async with serving(make_settings(tiny_checkpoint), ready=False, loader=failing_loader) as app:
        await app.state.startup.wait()
        async with http_client(app) as http:
            health = await http.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "failed"
            assert health.json()["progress"][0]["state"] == "failed"
            refused = await http.post("/v1/audio/speech", json=SPEECH)
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_load_failed"
            assert "retry-after" not in refused.headers
            for response in (health, refused, await http.get("/metrics")):
                assert "secret-dir" not in response.text and str(tmp_path) not in response.text


def test_served_ids_never_show_a_path(tmp_path: Path) -> None:
    local = tmp_path / "ckpt" / "voxtral-tts"
    local.mkdir(parents=True)
    settings = ServerSettings(model=[str(local), "mistralai/Voxtral-4B-TTS-2603"])
    assert (settings.served_id(0), settings.served_id(1)) == ("voxtral-tts", "mistralai/Voxtral-4B-TTS-2603")
    assert request_names(settings, 0) == (["voxtral-tts"], (str(local),))  # the path: accepted, not shown
    assert request_names(settings, 1) == (["mistralai/Voxtral-4B-TTS-2603", "Voxtral-4B-TTS-2603"], ())
    named = ServerSettings(model=str(local), served_model_name=["voice", "tts"])
    assert named.served_id() == "voice" and request_names(named, 0) == (["voice", "tts"], ())


def test_served_ids_must_differ(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "model", tmp_path / "b" / "model"
    with pytest.raises(ValueError, match="served_model_name"):
        create_app(ServerSettings(model=[str(first), str(second)]))
    named = ServerSettings(model=[str(first), str(second)], served_model_name=["one", "two"])
    assert create_app(named).state.startup.progress[1].id == "two"


async def test_audio_models_lists_the_speech_models(asr_app, asr_http, tiny_checkpoint: Path) -> None:
    body = (await asr_http.get("/v1/audio/models")).json()
    assert body["object"] == "list" and body["models"] == body["data"]
    (card,) = body["data"]  # the ASR model does not speak
    assert card["id"] == card["name"] == tiny_checkpoint.name
    assert card["capabilities"] == ["speech"] and "tts-1" in card["aliases"]


def _texts(response) -> str:
    return response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())


async def test_no_response_names_a_path_of_the_machine(
    asr_app, asr_http, tiny_checkpoint: Path, tiny_asr_checkpoint: Path
) -> None:
    """Models given by absolute path: ids, aliases, health, metrics, errors and the schema never show it;
    a request naming the path is still served."""
    paths = {str(tiny_checkpoint), str(tiny_asr_checkpoint), str(tiny_checkpoint.parent)}
    wav = {"file": ("a.wav", wav_bytes(0.5))}
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    responses = [await asr_http.get(route) for route in (
        "/health", "/metrics", "/v1/models", "/v1/audio/models", "/v1/audio/voices", "/openapi.json",
        "/v1/models/tts-1", "/v1/models/nope", "/v1/audio/voices?model=whisper-1",
    )]  # fmt: skip
    responses += [
        await asr_http.post("/v1/audio/speech", json=SPEECH | {"model": "nope"}),  # 404 listing the names
        await asr_http.post("/v1/audio/speech", json=SPEECH | {"model": "whisper-1"}),  # wrong task
        await asr_http.post("/v1/audio/transcriptions", data={"model": "nope"}, files=wav),
        await asr_http.post("/v1/audio/transcriptions", data={"model": "tts-1"}, files=wav),
        await asr_http.post("/v1/audio/translations", data={}, files=wav),
        await asr_http.post("/v1/chat/completions", json=chat | {"model": "nope"}),
        await asr_http.post("/v1/chat/completions", json=chat | {"model": "tts-1"}),
        await asr_http.post("/v1/chat/completions", json=chat | {"model": "whisper-1"}),
    ]
    by_path = await asr_http.post("/v1/audio/speech", json=SPEECH | {"model": str(tiny_checkpoint)})
    assert by_path.status_code == 200  # the path is still accepted as a name
    responses.append(by_path)
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 7 + [404, 400] + [404, 400, 404, 400, 400, 404, 400, 200] + [200]
    for response in responses:
        text = _texts(response)
        leaked = [p for p in paths if p in text]
        assert not leaked, (response.request.url, leaked, text[:300])
    assert tiny_checkpoint.name in responses[7].text  # the 404 still names the valid models


async def test_the_port_opens_before_the_models_are_loaded(tiny_checkpoint: Path) -> None:
    """Over a real socket: uvicorn accepts connections while the loader is still blocked."""
    import httpx

    from ._util import LiveServer

    release = threading.Event()

    def slow_loader(settings: ServerSettings, index: int):
        assert release.wait(timeout=120)
        return load_served_model(settings, index)

    app = create_app(make_settings(tiny_checkpoint), loader=slow_loader)
    server = LiveServer(app)
    server.thread.start()
    try:
        assert wait_until(lambda: server.server.started, timeout=60)
        health = httpx.get(f"{server.url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "loading"
        release.set()
        assert wait_until(lambda: httpx.get(f"{server.url}/health", timeout=10).status_code == 200, 120, 0.2)
    finally:
        release.set()
        server.__exit__(None, None, None)
