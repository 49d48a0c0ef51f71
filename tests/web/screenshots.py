"""Screenshots of the playground's three panels for the docs, taken in Debian's Chromium against a live server
with tiny random models (so the transcript is random words):

    python tests/web/screenshots.py            # writes docs/playground-{speak,transcribe,status}.png
    python tests/web/screenshots.py OUT_DIR

Run by hand (not collected by pytest); about a minute on a CPU.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))  # the server tests' helpers (LiveServer, wav_bytes)

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from server._util import LiveServer, wav_bytes  # noqa: E402
from speechserve.server import create_app  # noqa: E402
from speechserve.testing.asr_checkpoint import write_random_asr_checkpoint  # noqa: E402
from speechserve.testing.checkpoint import write_random_checkpoint  # noqa: E402
from speechserve.testing.realtime_checkpoint import write_random_realtime_checkpoint  # noqa: E402
from web._browser import chromium, launch_args, settings, write_mic_wav  # noqa: E402

VIEWPORT = {"width": 1024, "height": 1000}
TEXT = "Paris is a beautiful city! The audio starts playing while the rest is still being generated."


def checkpoints(root: Path) -> list[Path]:
    """Voxtral TTS (all 20 presets), Voxtral Mini 3B and Voxtral Realtime, tiny and random."""
    return [
        write_random_checkpoint(root / "voxtral-tts", seed=0),
        write_random_asr_checkpoint(root / "voxtral-mini", "mistral", seed=0),
        write_random_realtime_checkpoint(root / "voxtral-realtime", "mistral", seed=0),
    ]


def take(page: Page, out: Path) -> list[Path]:
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_role("textbox", name="Text", exact=True).fill(TEXT)
    page.get_by_label("Voice").select_option("fr_female")
    page.get_by_label("Seed").fill("42")
    page.get_by_role("button", name="Speak", exact=True).click()
    page.wait_for_function("() => window.playground.speak.state === 'done'", timeout=180_000)

    page.get_by_label("Audio file", exact=True).set_input_files(
        {"name": "interview.wav", "mimeType": "audio/wav", "buffer": wav_bytes(2.0, seed=5)}
    )
    page.get_by_role("button", name="Transcribe", exact=True).click()
    page.wait_for_function("() => window.playground.transcribe.state === 'done'", timeout=180_000)

    page.wait_for_function("() => window.playground.status.metrics.requests > 3")
    page.evaluate("document.activeElement?.blur()")
    shots = []
    for panel in ("speak", "transcribe", "status"):
        path = out / f"playground-{panel}.png"
        page.locator(f"#{panel}").screenshot(path=path, animations="disabled")
        shots.append(path)
    return shots


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        models = checkpoints(Path(tmp))
        mic = write_mic_wav(Path(tmp) / "mic.wav")
        with LiveServer(create_app(settings(models))) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=launch_args(mic))
            context = browser.new_context(base_url=server.url, viewport=VIEWPORT, color_scheme="light")
            for path in take(context.new_page(), out):
                print(path)
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else TESTS.parent / "docs")
