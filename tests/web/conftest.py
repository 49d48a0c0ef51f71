"""Fixtures of the playground's browser tests: the live server (tiny TTS, ASR, realtime and Dia models), one
with an API key, and Chromium with a fake microphone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from server._util import LiveServer
from speechserve.server import create_app

from ._browser import API_KEY, chromium, launch_args, open_page, settings, write_mic_wav


@pytest.fixture(scope="session")
def tiny_realtime_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Voxtral Realtime checkpoint (Mistral layout)."""
    from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint

    return write_random_realtime_checkpoint(tmp_path_factory.mktemp("tiny_rt"), "mistral", seed=0)


@pytest.fixture(scope="session")
def tiny_dia_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Dia checkpoint with its codec (no presets: speakers come from [S1]/[S2] tags)."""
    from speechserve.testing.dia_checkpoint import write_random_dia_checkpoint

    return write_random_dia_checkpoint(tmp_path_factory.mktemp("tiny_dia"), seed=0)


@pytest.fixture(scope="module")
def live(tiny_checkpoint, tiny_asr_checkpoint, tiny_realtime_checkpoint, tiny_dia_checkpoint) -> Iterator[LiveServer]:  # fmt: skip
    """Every kind of model the page drives, no API key."""
    models = [tiny_checkpoint, tiny_asr_checkpoint, tiny_realtime_checkpoint, tiny_dia_checkpoint]
    with LiveServer(create_app(settings(models))) as server:
        yield server


@pytest.fixture(scope="module")
def keyed(tiny_checkpoint, tiny_realtime_checkpoint) -> Iterator[LiveServer]:
    """A speech and a realtime model behind ``--api-key``."""
    app = create_app(settings([tiny_checkpoint, tiny_realtime_checkpoint], api_keys=[API_KEY]))
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium, for one module at a time: Playwright's sync API holds an event loop on this thread while it
    runs, which the async (anyio) tests of other modules could not share."""
    mic = write_mic_wav(tmp_path_factory.mktemp("mic") / "mic.wav")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=launch_args(mic))
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    """The playground on the key-less server, loaded and ready; ``page.console`` holds its errors."""
    page, console = open_page(browser, live.url)
    page.console = console  # type: ignore[attr-defined]
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")
    yield page
    page.context.close()
