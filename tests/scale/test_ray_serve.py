"""Two replicas of the app on a local Ray Serve (``ray.init`` on this machine, 4 logical CPUs), a tiny TTS and a
tiny realtime ASR model in each, driven through Ray's HTTP proxy with the official ``openai`` client.

Requests spread over both replicas (two distinct ``X-Speechserve-Replica`` ids); streamed audio and a
transcript equal the single-process app's for the same seed and input; a realtime session runs end to end
on one replica (two items in order, each with the offline transcript); killing a replica under load loses
no request that had not reached it — the ones streaming from it end with an error, never as a short 200 —
while Ray starts a new replica in its place.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import ray
from ray import serve

from speechserve.scale import ScaleOptions, ray_serve
from speechserve.scale.replica import REPLICA_HEADER
from speechserve.server import ServerSettings, create_app
from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint

pytestmark = pytest.mark.anyio

KEY = "sk-ray"
FRAME_BYTES = 1920 * 2  # one 80 ms frame of 24 kHz int16
SPEECH = {"model": "tts-1", "voice": "casual_male", "response_format": "pcm"}
TRANSCRIPTION = {"intent": "transcription"}
COMPLETED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def settings(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ServerSettings:
    realtime = write_random_realtime_checkpoint(tmp_path_factory.mktemp("ray_rt"), "mistral", seed=0)
    models = [str(tiny_checkpoint), str(realtime)]
    return ServerSettings(model=models, api_keys=[KEY], max_frames=48, cpu_threads=1, port=free_port())


@pytest.fixture(scope="module")
def cluster(settings: ServerSettings):
    """A local Ray (small, no dashboard or usage stats) with the app deployed as 2 replicas; its URL."""
    options = ScaleOptions(replicas=2)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        env.setenv("RAY_memory_monitor_refresh_ms", "0")  # no OOM-killing of replicas for others' memory
        ray_serve.connect(options, num_cpus=4, object_store_memory=100 * 2**20, include_dashboard=False)
        try:
            ray_serve.deploy(settings, options)
            yield f"http://127.0.0.1:{settings.port}"
        finally:
            serve.shutdown()
            ray.shutdown()


@pytest.fixture(scope="module")
async def reference(settings: ServerSettings):
    """The same settings as one in-process app (the single-process result)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await app.state.startup.wait()
        assert app.state.startup.status == "ok"
        yield app


def client_for(url: str, http: httpx.AsyncClient | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, http_client=http, timeout=90)


async def speak(client: openai.AsyncOpenAI, text: str, **extra: object) -> tuple[bytes, str | None]:
    """One streamed speech request: (the audio bytes, the replica that answered)."""
    body = {"seed": 7, **extra}
    async with client.with_streaming_response.audio.speech.create(input=text, extra_body=body, **SPEECH) as r:
        return b"".join([chunk async for chunk in r.iter_bytes()]), r.headers.get(REPLICA_HEADER)


def pcm16(seconds: float, seed: int, rate: int = 24_000) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1
    return np.round(np.clip(noise, -1, 1) * 32767).astype("<i2")


# ---- spread, parity -------------------------------------------------------------------------------------------
async def test_requests_spread_over_both_replicas_with_the_single_process_audio(cluster, reference) -> None:
    """Eight at once, then one at a time until both replicas have answered (Ray's router picks the less
    busy of two sampled replicas, at random when tied). Every stream is the single-process app's audio for
    the same seed, to the server's own same-seed tolerance (2 LSB of int16: chunk sizes follow timing)."""
    texts = [f"Hello number {i}." for i in range(40)]
    async with client_for(cluster) as client:
        answers = await asyncio.gather(*[speak(client, text) for text in texts[:8]])
        while (len({r for _, r in answers}) < 2 or len(answers) < 10) and len(answers) < len(texts):
            answers.append(await speak(client, texts[len(answers)]))
    replicas = {replica for _, replica in answers}
    assert len(replicas) == 2 and None not in replicas
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=reference), base_url="http://in.process")
    async with client_for("http://in.process", http) as local:
        expected = [await speak(local, text) for text in texts[: len(answers)]]
    for (audio, _), (want, _) in zip(answers, expected, strict=True):
        assert len(audio) == len(want) == 48 * FRAME_BYTES
        got, ref = (np.frombuffer(a, "<i2").astype(np.int32) for a in (audio, want))
        assert np.abs(got - ref).max() <= 2 and np.abs(ref).max() > 1000


async def test_transcription_through_ray_equals_the_single_process(cluster, reference) -> None:
    from speechserve.audio import encode_audio

    wav = encode_audio(pcm16(2.0, 3).astype(np.float32) / 32768, 24_000, "wav")
    async with client_for(cluster) as client:
        remote = await client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=reference), base_url="http://in.process")
    async with client_for("http://in.process", http) as local:
        expected = await local.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
    assert remote.text == expected.text != ""


# ---- realtime --------------------------------------------------------------------------------------------------
async def test_a_realtime_session_runs_end_to_end_on_one_replica(cluster, reference) -> None:
    """Two utterances in one session: the second item follows the first (session state lived on one
    replica the whole time) and each transcript is the single-process model's offline transcript."""
    utterances = [pcm16(1.5, 11), pcm16(1.0, 12)]
    committed, completed = [], []
    client = client_for(cluster)
    async with client, client.realtime.connect(model="whisper-1", extra_query=TRANSCRIPTION) as conn:
        fmt = {"type": "audio/pcm", "rate": 24_000}
        session = {"type": "transcription", "audio": {"input": {"format": fmt}}}
        await conn.session.update(session=session)
        for pcm in utterances:
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm.tobytes()).decode())
            await conn.input_audio_buffer.commit()
            async for event in conn:
                assert event.type != "error", event
                if event.type == "input_audio_buffer.committed":
                    committed.append(event)
                if event.type == COMPLETED:
                    completed.append(event)
                    break
    pipeline = reference.state.registry.models[1].pipeline
    expected = [pipeline.transcribe((pcm.astype(np.float32) / 32768, 24_000)).text for pcm in utterances]
    assert [e.transcript for e in completed] == expected and all(expected)
    assert [e.item_id for e in committed] == [e.item_id for e in completed]
    assert committed[1].previous_item_id == committed[0].item_id != committed[1].item_id


async def test_the_websocket_handshake_names_its_replica_and_needs_the_key(cluster) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    url = cluster.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    async with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as conn:
        assert conn.response.headers[REPLICA_HEADER]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 401


async def test_metrics_and_health_answer_per_replica(cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster, timeout=30) as http:
        replies = [await http.get("/metrics") for _ in range(12)]
        health = await http.get("/health")
    assert all(r.status_code == 200 and b"speechserve_requests" in r.content for r in replies)
    assert len({r.headers[REPLICA_HEADER] for r in replies}) == 2
    assert health.json()["status"] == "ok" and health.headers[REPLICA_HEADER]


# ---- a replica dies under load ----------------------------------------------------------------------------------
def kill_replica(replica: str) -> None:
    actor = f"SERVE_REPLICA::{ray_serve.APP_NAME}#{ray_serve.DEPLOYMENT_NAME}#{replica}"
    ray.kill(ray.get_actor(actor, namespace="serve"), no_restart=True)


async def test_killing_a_replica_loses_no_request_that_had_not_reached_it(cluster) -> None:
    records: list[dict] = []

    async def one(client: openai.AsyncOpenAI, i: int) -> None:
        record: dict = {"start": time.monotonic(), "replica": None, "error": None}
        records.append(record)
        try:
            body = {"seed": i, "max_tokens": 48}
            async with client.with_streaming_response.audio.speech.create(
                input=f"Sentence {i}.", extra_body=body, **SPEECH
            ) as r:
                record["replica"] = r.headers.get(REPLICA_HEADER)
                record["bytes"] = len(b"".join([chunk async for chunk in r.iter_bytes()]))
        except (openai.APIError, httpx.HTTPError) as exc:
            record["error"] = exc
        record["end"] = time.monotonic()

    async def stream(client: openai.AsyncOpenAI, first: int, count: int) -> None:
        for i in range(first, first + count):
            await one(client, i)

    async with client_for(cluster, httpx.AsyncClient(timeout=90)) as client:  # its errors: httpx's
        load = [asyncio.create_task(stream(client, 100 * w, 6)) for w in range(4)]
        streaming = await asyncio.wait_for(first_streams(records), 120)
        cut, victim = streaming[0], streaming[0]["replica"]
        in_flight = [r for r in records if "end" not in r]
        kill_replica(victim)
        killed_at = time.monotonic()
        await asyncio.gather(*load)
    failed = [r for r in records if r["error"] is not None]
    assert len(records) == 24 and cut in failed  # the stream cut off ends in an error, not a short 200
    assert all(r["start"] < killed_at for r in failed), failed  # nothing sent after the kill was lost
    assert len(failed) <= len(in_flight) and all(r in in_flight for r in failed)
    assert all(r["replica"] in (victim, None) for r in failed)
    assert not [r for r in failed if isinstance(r["error"], (openai.APITimeoutError, httpx.TimeoutException))]
    assert all(r["bytes"] == 48 * FRAME_BYTES for r in records if r["error"] is None)  # never a short 200
    assert {r["replica"] for r in records if r["start"] > killed_at} - {victim, None}
    await replica_replaced(cluster, victim)


async def first_streams(records: list[dict]) -> list[dict]:
    """The records of requests streaming at the first moment one is (its headers came, its body has not)."""
    while not (streaming := [r for r in records if r["replica"] and "end" not in r]):
        await asyncio.sleep(0.01)
    return streaming


async def replica_replaced(url: str, victim: str, timeout: float = 120) -> None:
    """Ray starts a new replica: two running again, and a new id answers."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while time.monotonic() < deadline:
            status = serve.status().applications[ray_serve.APP_NAME].deployments[ray_serve.DEPLOYMENT_NAME]
            if status.replica_states.get("RUNNING", 0) == 2:
                seen |= {(await http.get("/health")).headers.get(REPLICA_HEADER, "") for _ in range(6)}
                if len(seen - {victim}) == 2:
                    return
            await asyncio.sleep(0.5)
    raise AssertionError(f"no replacement replica within {timeout} s (seen {seen})")
