"""Fixtures of the server tests: shared apps (tiny checkpoints) driven in-process through the openai client."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._util import http_client, make_settings, openai_client, serving


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def app(tiny_checkpoint: Path):
    """The shared app: tiny checkpoint without encoder weights, 8 frames per segment."""
    async with serving(make_settings(tiny_checkpoint)) as app:
        yield app


@pytest.fixture
async def client(app):
    async with openai_client(app) as c:
        yield c


@pytest.fixture
async def http(app):
    async with http_client(app) as c:
        yield c


@pytest.fixture(scope="session")
async def asr_app(tiny_asr_checkpoint: Path, tiny_checkpoint: Path):
    """A tiny ASR and a tiny TTS model side by side (ASR first), uploads capped at 2 MB."""
    models = [str(tiny_asr_checkpoint), str(tiny_checkpoint)]
    async with serving(make_settings(tiny_asr_checkpoint, model=models, max_upload_mb=2.0)) as app:
        yield app


@pytest.fixture
async def asr_client(asr_app):
    async with openai_client(asr_app) as c:
        yield c


@pytest.fixture
async def asr_http(asr_app):
    async with http_client(asr_app) as c:
        yield c
