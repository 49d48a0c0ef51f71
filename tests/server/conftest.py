"""Fixtures of the server tests: one shared app (tiny checkpoint) driven in-process through the openai client."""

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
