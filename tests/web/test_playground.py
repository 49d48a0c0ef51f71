"""The web playground at ``GET /``, driven in Debian's Chromium against the real app over a real socket: the
page loads clean, voices populate, speech plays while it is generated and Stop cancels it on the server, a
download, an uploaded file's streamed transcript and its SRT/VTT, the microphone through ``/v1/realtime``
(Chromium's fake capture fed from a WAV), the status panel, Dia's dialogue editor, and a server behind an
API key that the page asks for."""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path

import httpx
import srt
import webvtt
from playwright.sync_api import Page, expect

from server._util import SPF, LiveServer, wait_until, wav_bytes

from ._browser import API_KEY, MAX_FRAMES, open_page

MAX_SAMPLES = MAX_FRAMES * SPF
CANCELLED = "speechserve_speech_cancelled_total"
FRAMES = "speechserve_output_frames_total"


def _metric(server: LiveServer, name: str) -> float:
    return server.app.state.metrics.registry.get_sample_value(name) or 0.0


def _model(server: LiveServer, capability: str):
    return next(m for m in server.app.state.registry.models if m.supports(capability))


def _stats(page: Page, panel: str) -> dict:
    return page.evaluate(f"() => ({{...window.playground.{panel}}})")


def _button(page: Page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def test_page_loads_clean_with_labelled_controls_and_grouped_voices(page: Page, live: LiveServer) -> None:
    expect(page).to_have_title("speechserve playground")
    for role, name in [("textbox", "Text"), ("button", "Speak"), ("button", "Stop"), ("button", "Transcribe"),
                       ("button", "Record"), ("log", "Transcript")]:  # fmt: skip
        expect(page.get_by_role(role, name=name, exact=True)).to_be_visible()
    expect(page.get_by_label("Audio file", exact=True)).to_have_attribute("type", "file")
    expect(page.get_by_role("log", name="Transcript")).to_have_attribute("aria-live", "polite")
    expect(_button(page, "Stop")).to_be_disabled()

    groups = page.eval_on_selector_all(
        "#voice optgroup", "gs => gs.map(g => [g.label, [...g.children].map(o => o.value)])"
    )
    assert dict(groups) == {"English · female": ["cheerful_female"], "English · male": ["casual_male"],
                            "French · female": ["fr_female"]}  # fmt: skip
    speech = [m.id for m in live.app.state.registry.models if m.supports("speech")]
    assert page.eval_on_selector_all("#speak-model option", "os => os.map(o => o.value)") == speech
    realtime = page.eval_on_selector_all("#realtime-model option", "os => os.map(o => o.value)")
    assert realtime == [_model(live, "realtime").id]
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(c => !(c.labels?.length || c.getAttribute('aria-label') || c.textContent.trim()))
            .map(c => c.outerHTML)"""
    )
    assert unnamed == []  # every control has a label
    assert page.console.errors == []  # type: ignore[attr-defined]


def test_server_errors_are_shown_in_the_panel(page: Page) -> None:
    page.get_by_label("Seed").fill("-1")
    _button(page, "Speak").click()
    status = page.locator("#speak-status")
    expect(status).to_have_class(re.compile(r"\berror\b"))
    expect(status).to_contain_text("seed")  # the server's 400 message (OpenAI's envelope), as it said it
    assert _stats(page, "speak")["state"] == "error"
    expect(_button(page, "Speak")).to_be_enabled()


def test_speech_plays_while_it_is_generated(page: Page, live: LiveServer) -> None:
    tts = _model(live, "speech")
    frames_before = _metric(live, FRAMES)
    page.get_by_role("textbox", name="Text", exact=True).fill(
        "The first words play before the last are made."
    )
    _button(page, "Speak").click()
    page.wait_for_function("() => window.playground.speak.samplesScheduled > 0")
    generation = _stats(page, "speak")["generationId"]
    assert (
        generation in tts.in_flight
    )  # samples reached the audio graph while the server was still generating

    page.wait_for_function("() => window.playground.speak.state === 'done'", timeout=120_000)
    stats = _stats(page, "speak")
    assert stats["rate"] == 24000 and stats["encoding"] == "s16le"  # from the response's content type
    assert stats["firstAudioAt"] < stats["doneAt"]
    assert 0 < stats["samplesAtFirstAudio"] < stats["samplesScheduled"]
    assert stats["playedAtDone"] > 0  # the audio clock had played some of it before the response ended
    frames = _metric(live, FRAMES) - frames_before
    assert stats["samplesScheduled"] == frames * SPF > 0  # every generated sample was scheduled
    expect(page.locator("#ttfa")).to_have_text(f"{round(stats['firstAudioMs'])} ms")
    assert float(page.locator("#rtf").text_content()) > 0
    expect(_button(page, "Stop")).to_be_disabled()
    assert page.console.errors == []  # type: ignore[attr-defined]


def test_stop_aborts_and_the_server_cancels(page: Page, live: LiveServer) -> None:
    tts = _model(live, "speech")
    before = _metric(live, CANCELLED)
    page.get_by_role("textbox", name="Text", exact=True).fill("Nobody will hear the end of this sentence.")
    _button(page, "Speak").click()
    page.wait_for_function("() => window.playground.speak.samplesScheduled > 0")
    generation = _stats(page, "speak")["generationId"]
    assert generation in tts.in_flight
    _button(page, "Stop").click()

    assert wait_until(lambda: _metric(live, CANCELLED) == before + 1, timeout=60)
    assert wait_until(lambda: generation not in tts.in_flight, timeout=60)
    stats = _stats(page, "speak")
    assert stats["state"] == "stopped" and "doneAt" not in stats
    assert stats["samplesScheduled"] < MAX_SAMPLES  # cut short
    expect(_button(page, "Stop")).to_be_disabled()
    expect(_button(page, "Speak")).to_be_enabled()
    expect(page.locator("#speak-status")).to_have_text("Stopped.")
    assert page.console.errors == []  # type: ignore[attr-defined]


def test_download_asks_for_a_complete_file_in_the_chosen_format(page: Page, tmp_path: Path) -> None:
    page.get_by_label("Format").select_option("wav")
    with page.expect_download(timeout=120_000) as download:
        _button(page, "Download").click()
    assert download.value.suggested_filename == "speech.wav"
    path = tmp_path / "speech.wav"
    download.value.save_as(path)
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        assert w.getnframes() > 0 and w.getnframes() % SPF == 0


def test_uploaded_file_streams_its_transcript_and_copies_srt_and_vtt(page: Page, live: LiveServer) -> None:
    audio = wav_bytes(3.0, seed=3)
    asr = _model(live, "transcription")

    def server_answer(fmt: str) -> str:  # the same file, asked directly
        form = {"model": asr.id, "response_format": fmt}
        r = httpx.post(f"{live.url}/v1/audio/transcriptions", files={"file": ("talk.wav", audio)}, data=form, timeout=120)  # fmt: skip
        return r.text

    expected = json.loads(server_answer("json"))["text"].strip()
    page.get_by_label("Audio file", exact=True).set_input_files(
        {"name": "talk.wav", "mimeType": "audio/wav", "buffer": audio}
    )
    _button(page, "Transcribe").click()
    page.wait_for_function("() => window.playground.transcribe.state === 'done'", timeout=120_000)
    stats = _stats(page, "transcribe")
    assert stats["deltas"] > 1  # streamed, piece by piece
    assert stats["text"] == expected != ""
    expect(page.get_by_role("log", name="Transcript")).to_have_text(expected)

    for fmt, name in [("srt", "Copy SRT"), ("vtt", "Copy VTT"), ("text", "Copy text")]:
        _button(page, name).click()
        page.wait_for_function(f"() => window.playground.transcribe.copied?.format === '{fmt}'")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == (expected if fmt == "text" else server_answer(fmt)), fmt
    cue = next(srt.parse(server_answer("srt")))
    assert (cue.start.total_seconds(), cue.end.total_seconds()) == (0.0, 3.0)
    assert webvtt.from_string(server_answer("vtt")).captions[0].start == "00:00:00.000"
    assert page.console.errors == []  # type: ignore[attr-defined]


def test_microphone_transcribes_live_through_realtime(page: Page, live: LiveServer) -> None:
    realtime = _model(live, "realtime")
    page.get_by_label("Delay").select_option("minimal")
    record = _button(page, "Record")
    record.click()
    expect(record).to_have_attribute("aria-pressed", "true")
    # text arrives while the microphone is still on (Chromium's fake capture plays the WAV)
    page.wait_for_function("() => window.playground.transcribe.deltasWhileRecording > 0", timeout=120_000)
    page.wait_for_function("() => window.playground.transcribe.samplesSent >= 24000")  # 1 s of audio out
    assert page.get_by_role("log", name="Transcript").text_content().strip()
    assert realtime.in_flight  # the realtime session is transcribing on the server

    record.click()
    expect(record).to_have_attribute("aria-pressed", "false")
    page.wait_for_function("() => window.playground.transcribe.state === 'done'", timeout=120_000)
    stats = _stats(page, "transcribe")
    assert stats["samplesSent"] >= 24000  # 24 kHz PCM16 from the microphone
    assert stats["text"] and not page.locator("#transcript .partial").count()  # every item completed
    expect(page.get_by_role("log", name="Transcript")).to_have_text(stats["text"])
    assert wait_until(lambda: not realtime.in_flight, timeout=60)  # the session ended and freed its stream
    assert _metric(live, "speechserve_text_in_flight") == 0

    _button(page, "Copy SRT").click()  # asked of the server for a WAV of what the microphone sent
    page.wait_for_function("() => window.playground.transcribe.copied?.format === 'srt'", timeout=120_000)
    assert list(srt.parse(page.evaluate("navigator.clipboard.readText()")))
    assert page.console.errors == []  # type: ignore[attr-defined]


def test_status_panel_shows_models_queue_and_in_flight(page: Page, live: LiveServer) -> None:
    page.wait_for_function("() => window.playground.status.health?.status === 'ok'")
    rows = page.locator("#models tr")
    models = live.app.state.registry.models
    expect(rows).to_have_count(len(models))
    for row, model in zip(rows.all(), models, strict=True):
        expect(row.locator("th")).to_have_text(model.id)
        expect(row.locator("td").first).to_have_text(", ".join(model.capabilities))
        expect(row).to_contain_text("ready")
    page.wait_for_function("() => window.playground.status.metrics.requests > 0")
    for name in ("Queue waiting", "Generating", "Speech in flight", "Transcriptions in flight"):
        value = page.locator("dt", has_text=re.compile(f"^{name}$")).locator("xpath=../dd/output")
        expect(value).to_have_text(re.compile(r"^\d+$"))


def test_dia_model_gets_the_dialogue_editor_and_plays_at_its_rate(page: Page, live: LiveServer) -> None:
    dia = next(m for m in live.app.state.registry.models if m.family.name == "dia")
    page.get_by_role("combobox", name="Model", exact=True).first.select_option(dia.id)
    expect(page.locator("#voice-field")).to_be_hidden()
    toolbar = page.get_by_role("toolbar", name="Dialogue")
    expect(toolbar).to_be_visible()
    text = page.get_by_role("textbox", name="Text", exact=True)
    text.fill("")
    toolbar.get_by_role("button", name="[S1]").click()
    text.press_sequentially("Hello there.")
    toolbar.get_by_role("button", name="[S2]").click()
    text.press_sequentially("Hi!")
    expect(text).to_have_value("[S1] Hello there. [S2] Hi!")

    _button(page, "Speak").click()
    page.wait_for_function("() => window.playground.speak.state === 'done'", timeout=120_000)
    stats = _stats(page, "speak")
    assert stats["rate"] == 44100 and stats["samplesScheduled"] > 0  # Dia's rate, read from the content type
    assert page.console.errors == []  # type: ignore[attr-defined]


def test_keyboard_alone_speaks_and_stops(page: Page, live: LiveServer) -> None:
    before = _metric(live, CANCELLED)
    text = page.get_by_role("textbox", name="Text", exact=True)
    text.focus()
    page.keyboard.press("Control+Enter")  # the shortcut on the text box
    page.wait_for_function("() => window.playground.speak.samplesScheduled > 0")
    for _ in range(12):  # Tab through the controls to Stop (Speak is disabled while speaking)
        if page.evaluate("document.activeElement.id") == "stop-button":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "stop-button"
    page.keyboard.press("Enter")
    assert wait_until(lambda: _metric(live, CANCELLED) == before + 1, timeout=60)
    assert _stats(page, "speak")["state"] == "stopped"


def test_phone_layout_stacks_the_panels_without_sideways_scrolling(browser, live: LiveServer) -> None:
    context = browser.new_context(base_url=live.url, viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto("/")
        page.wait_for_selector("body[data-ready=true]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        boxes = [page.locator(f"#{panel}").bounding_box() for panel in ("speak", "transcribe", "status")]
        assert len({round(b["x"]) for b in boxes}) == 1  # one column
        assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]
        for box in boxes:
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        for name in ("Speak", "Stop", "Transcribe", "Record"):
            b = _button(page, name).bounding_box()
            assert b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["height"] >= 32, (
                name
            )  # on screen, tappable
    finally:
        context.close()


def test_with_an_api_key_the_page_asks_for_it_then_works(browser, keyed: LiveServer) -> None:
    page, _ = open_page(browser, keyed.url)
    try:
        page.goto("/")
        dialog = page.get_by_role("dialog", name="API key required")
        expect(dialog).to_be_visible()
        dialog.get_by_label("API key").fill("sk-wrong")
        dialog.get_by_role("button", name="Use key").click()
        expect(dialog).to_be_visible()  # 401 again: asked again, with the server's message
        expect(dialog).to_contain_text("API key")
        dialog.get_by_label("API key").fill(API_KEY)
        dialog.get_by_role("button", name="Use key").click()
        page.wait_for_selector("body[data-ready=true]")
        expect(dialog).to_be_hidden()
        assert page.evaluate("localStorage.getItem('speechserve.apiKey')") == API_KEY
        assert page.locator("#voice option").count() == 3

        _button(page, "Speak").click()
        page.wait_for_function("() => window.playground.speak.samplesScheduled > 0")
        _button(page, "Stop").click()

        record = _button(page, "Record")  # the WebSocket carries the key as a subprotocol
        record.click()
        page.wait_for_function("() => window.playground.transcribe.deltas > 0", timeout=120_000)
        record.click()
        page.wait_for_function("() => window.playground.transcribe.state === 'done'", timeout=120_000)
        assert _stats(page, "transcribe")["text"]

        page.reload()  # the key is remembered
        page.wait_for_selector("body[data-ready=true]")
        expect(dialog).to_be_hidden()
    finally:
        page.context.close()


def test_page_and_static_files_are_open_without_a_key(keyed: LiveServer) -> None:
    with httpx.Client(base_url=keyed.url, timeout=30) as http:
        assert http.get("/v1/models").status_code == 401
        page = http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        script = http.get("/static/main.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        again = http.get("/static/main.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        for path in [
            "/static/router.py",
            "/static/.hidden.js",
            "/static/%2e%2e%2frouter.py",
            "/static/a/b.js",
        ]:
            assert http.get(path).status_code == 404, path
        assert "/" not in http.get("/openapi.json").json()["paths"]
