"""Helpers of the playground's browser tests: Debian's Chromium driven by Playwright (no ``playwright
install``), the served models (tiny TTS, ASR, realtime and Dia checkpoints), the microphone's WAV."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser, Page

from speechserve.server import ServerSettings

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
API_KEY = "sk-playground-test"
"""The key of the test server started with ``--api-key``."""
MIC_RATE = 48_000
MAX_FRAMES = 100
"""80 ms frames per speech segment on the test server: 8 s of audio, several seconds to generate on a CPU."""


def chromium() -> str:
    """The browser's path; a clear error (not a skip) where it is missing."""
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        raise RuntimeError(
            "the browser tests need Debian's Chromium: apt-get update && apt-get install -y chromium"
        )
    return path


def launch_args(mic_wav: Path) -> list[str]:
    """Chromium's flags: headless, offline, autoplay allowed, a fake microphone that plays ``mic_wav``."""
    return [
        *BASE_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
    ]


def write_mic_wav(path: Path, seconds: float = 4.0) -> Path:
    """What the fake microphone hears (Chromium loops it): a tone over quiet noise, 48 kHz PCM16 mono."""
    t = np.arange(int(seconds * MIC_RATE)) / MIC_RATE
    rng = np.random.default_rng(0)
    x = 0.25 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MIC_RATE)
        out.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def settings(models: list[Path], **overrides) -> ServerSettings:
    """Server settings serving ``models`` (in order) with short speech segments."""
    return ServerSettings(**({"model": [str(m) for m in models], "max_frames": MAX_FRAMES} | overrides))


class Console:
    """Errors a page reported: console errors and uncaught exceptions."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


def open_page(browser: Browser, url: str) -> tuple[Page, Console]:
    """A fresh page (own storage) on the server at ``url``, allowed the microphone and the clipboard."""
    context = browser.new_context(
        base_url=url, permissions=["microphone", "clipboard-read", "clipboard-write"]
    )
    context.set_default_timeout(60_000)
    page = context.new_page()
    return page, Console(page)
