"""``/openapi.json`` documents the status codes the server really answers (400, not FastAPI's 422), each
with the error envelope's schema; then schemathesis, driven by that schema against a real uvicorn server,
finds no 5xx and no undocumented status code (bounded and deterministic: a few examples per operation,
valid and invalid data, ``derandomize``)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from speechserve.server.chat.media import MediaFetcher

from ._util import LiveServer, make_settings

from speechserve.server import create_app  # isort: skip

EXAMPLES = 15
"""Examples per operation and generation mode (``derandomize``: the same ones on every run)."""
ENVELOPE = "#/components/schemas/ErrorResponse"


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [(m.upper(), p, op) for p, ops in schema["paths"].items() for m, op in ops.items()]


def test_every_route_documents_its_errors_with_the_envelope(tiny_checkpoint: Path) -> None:
    schema = create_app(make_settings(tiny_checkpoint)).openapi()
    text = json.dumps(schema)
    assert '"422"' not in text and "HTTPValidationError" not in text
    envelope = schema["components"]["schemas"]["ErrorResponse"]
    error = schema["components"]["schemas"]["ErrorObject"]
    assert envelope["required"] == ["error"]
    assert set(error["required"]) == {"message", "type", "param", "code"}
    for method, path, op in _operations(schema):
        codes = {c for c in op["responses"] if c != "200"}
        expected = {"401", "503"} if path.startswith("/v1") else {"503"}
        expected |= {"400", "413"} if method == "POST" else set()
        assert expected <= codes, (method, path, codes)
        for code in codes - {"503"} if path == "/health" else codes:
            ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref == ENVELOPE, (method, path, code)
    posts = {p: set(op["responses"]) for m, p, op in _operations(schema) if m == "POST"}
    assert {"404", "429"} <= posts["/v1/audio/speech"] and {"404", "429"} <= posts["/v1/chat/completions"]


async def _public(host: str, port: int) -> list[str]:
    """Every host resolves to one public address (no DNS query leaves the test)."""
    return ["93.184.216.34"]


@pytest.fixture(scope="module")
def live_api(tiny_asr_checkpoint: Path, tiny_checkpoint: Path):
    """Both models behind uvicorn, short generations; audio URLs are 'fetched' from a transport that
    answers 404, so the network is never reached."""
    models = [str(tiny_checkpoint), str(tiny_asr_checkpoint)]
    config = make_settings(tiny_checkpoint, model=models, max_frames=2, max_upload_mb=1.0)
    app = create_app(config)
    with LiveServer(app) as server:
        transport = httpx.MockTransport(lambda request: httpx.Response(404))
        app.state.chat.fetcher = MediaFetcher(config, resolver=_public, transport=transport)
        yield server


def _bounded(case) -> None:
    """Keep generated requests short on a 2-core machine: at most a few tokens per generation."""
    if isinstance(case.body, dict):
        for field in ("max_tokens", "max_completion_tokens"):
            if not isinstance(case.body.get(field), int) or case.body[field] > 4:
                case.body[field] = 4


def _fuzz(operation, mode: GenerationMode, url: str, statuses: set[int]) -> None:
    """Call ``operation`` with ``EXAMPLES`` generated requests; fail on a 5xx, an undocumented status or
    content type."""
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        if mode is GenerationMode.POSITIVE:
            _bounded(case)
        response = case.call(base_url=url, timeout=120)
        statuses.add(response.status_code)
        case.validate_response(response, checks=checks)

    run()


def test_schemathesis_finds_no_server_error_and_no_undocumented_status(live_api: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    seen: dict[str, set[int]] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, live_api.url, seen.setdefault(operation.label, set()))
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert all(seen.values()), seen
    assert 200 in seen["POST /v1/audio/speech"] and 400 in seen["POST /v1/audio/speech"], seen
