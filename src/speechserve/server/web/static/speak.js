// The Speak panel: model and voice pickers (a [S1]/[S2] dialogue editor for models without presets, such as
// Dia), text, speed, seed; playback of `pcm` streamed as it is generated, live time to first audio and
// real-time factor; Stop aborts the request (the server cancels the generation); Download asks again for a
// complete file in the chosen format.

import { can } from "./api.js";
import { PcmPlayer, pcmParams } from "./player.js";

const EXTENSIONS = { mp3: "mp3", opus: "opus", aac: "aac", flac: "flac", wav: "wav", pcm: "pcm", pcm_f32le: "f32" };
const DIALOGUE_SAMPLE = "[S1] Did you hear that? [S2] I did. (laughs) [S1] Then let's go.";
const $ = (id) => document.getElementById(id);

function languageName(code) {
  try {
    return new Intl.DisplayNames([navigator.language || "en"], { type: "language" }).of(code) || code;
  } catch {
    return code;
  }
}

/** Voices of GET /v1/audio/voices grouped as [[label, voices], …], by language then gender. */
export function groupVoices(voices) {
  const groups = new Map();
  for (const voice of voices) {
    const label = [languageName(voice.language), voice.gender].filter(Boolean).join(" · ");
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(voice);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export class SpeakPanel {
  constructor(api) {
    this.api = api;
    this.models = [];
    this.voices = [];
    this.controller = null;
    this.player = new PcmPlayer();
    this.el = {
      model: $("speak-model"), voice: $("voice"), voiceField: $("voice-field"), dialogue: $("dialogue"),
      text: $("text"), speed: $("speed"), seed: $("seed"), rate: $("sample-rate"), format: $("format"),
      speak: $("speak-button"), stop: $("stop-button"), download: $("download-button"),
      ttfa: $("ttfa"), rtf: $("rtf"), length: $("audio-length"), status: $("speak-status"),
    };
    /** What the page did, for people and for tests: samples that reached the audio graph, timings … */
    this.stats = { state: "idle" };
    this.el.speak.addEventListener("click", () => this.speak());
    this.el.stop.addEventListener("click", () => this.stop());
    this.el.download.addEventListener("click", () => this.download());
    this.el.model.addEventListener("change", () => this.loadVoices());
    this.el.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.speak();
      }
    });
    this.el.dialogue.addEventListener("click", (event) => {
      const tag = event.target.closest("button")?.dataset.insert;
      if (tag) this.insert(tag);
    });
  }

  get model() {
    return this.models.find((m) => m.id === this.el.model.value) || null;
  }

  async setModels(models) {
    this.models = models.filter((m) => can(m, "speech"));
    const current = this.el.model.value;
    this.el.model.replaceChildren(...this.models.map((m) => new Option(m.id, m.id)));
    if (this.models.some((m) => m.id === current)) this.el.model.value = current;
    const none = this.models.length === 0;
    for (const control of [this.el.speak, this.el.download, this.el.model]) control.disabled = none;
    if (none) this.say("No model on this server speaks.");
    else await this.loadVoices();
  }

  async loadVoices() {
    const model = this.model;
    if (!model) return;
    try {
      const body = await this.api.json(`v1/audio/voices?model=${encodeURIComponent(model.id)}`);
      this.voices = body.voices;
    } catch (error) {
      this.voices = [];
      this.say(`Voices: ${error.message}`, true);
    }
    const dialogue = model.family === "dia" || this.voices.length === 0;
    this.el.voiceField.hidden = dialogue;
    this.el.dialogue.hidden = !dialogue;
    if (dialogue && !/\[S[12]\]/.test(this.el.text.value)) this.el.text.value = DIALOGUE_SAMPLE;
    const chosen = this.el.voice.value;
    this.el.voice.replaceChildren(...groupVoices(this.voices).map(([label, voices]) => {
      const group = document.createElement("optgroup");
      group.label = label;
      for (const v of voices) {
        const aliases = v.aliases?.length ? ` — ${v.aliases.join(", ")}` : "";
        group.append(new Option(`${v.name} (${v.id})${aliases}`, v.id));
      }
      return group;
    }));
    if (this.voices.some((v) => v.id === chosen)) this.el.voice.value = chosen;
    this.stats.voices = this.voices.length;
  }

  /** Insert a speaker tag (or a nonverbal) at the caret, with a space before it when needed. */
  insert(tag) {
    const text = this.el.text;
    const start = text.selectionStart ?? text.value.length;
    const before = start > 0 && !/\s/.test(text.value[start - 1]) ? " " : "";
    text.setRangeText(before + tag, start, text.selectionEnd ?? start, "end");
    text.focus();
  }

  body(format) {
    const body = { model: this.model?.id, input: this.el.text.value, response_format: format };
    if (!this.el.voiceField.hidden && this.el.voice.value) body.voice = this.el.voice.value;
    const speed = Number(this.el.speed.value);
    if (speed && speed !== 1) body.speed = speed;
    if (this.el.seed.value !== "") body.seed = Number(this.el.seed.value);
    if (this.el.rate.value) body.sample_rate = Number(this.el.rate.value);
    return body;
  }

  say(message, error = false) {
    this.el.status.textContent = message;
    this.el.status.classList.toggle("error", error);
  }

  busy(on) {
    this.el.speak.disabled = on;
    this.el.stop.disabled = !on;
  }

  async speak() {
    if (!this.el.text.value.trim()) {
      this.say("Type something to speak first.", true);
      this.el.text.focus();
      return;
    }
    if (this.controller) this.stop(); // Ctrl+Enter while speaking: start over
    this.player.unlock(); // inside the click: browsers start audio only after a gesture
    const controller = new AbortController();
    this.controller = controller;
    const body = this.body("pcm");
    const started = performance.now();
    const stats = { state: "requesting", startedAt: started, samplesScheduled: 0, bytes: 0, firstAudioAt: null };
    this.stats = { ...stats, voices: this.voices.length };
    this.el.ttfa.value = this.el.rtf.value = this.el.length.value = "…";
    this.busy(true);
    this.say("Generating…");
    try {
      const response = await this.api.fetch("v1/audio/speech", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      const { rate, encoding } = pcmParams(response.headers.get("content-type"), body.sample_rate || this.model?.sample_rate);
      Object.assign(this.stats, { state: "playing", rate, encoding, generationId: response.headers.get("x-generation-id") });
      this.player.begin(rate, encoding);
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.received(value, started);
      }
      this.finished(started);
    } catch (error) {
      if (error.name === "AbortError") return; // Stop: stop() said so
      this.stats.state = "error";
      this.stats.error = error.message;
      this.say(error.message, true);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.busy(false);
      }
    }
  }

  received(bytes, started) {
    const stats = this.stats;
    stats.bytes += bytes.length;
    const n = this.player.push(bytes);
    if (n === 0) return;
    stats.samplesScheduled += n;
    const now = performance.now();
    if (stats.firstAudioAt === null) {
      stats.firstAudioAt = now;
      stats.firstAudioMs = now - started;
      stats.samplesAtFirstAudio = stats.samplesScheduled;
      this.el.ttfa.value = `${Math.round(stats.firstAudioMs)} ms`;
    }
    const audioSeconds = stats.samplesScheduled / stats.rate;
    stats.rtf = (now - started) / 1000 / audioSeconds;
    this.el.rtf.value = stats.rtf.toFixed(2);
    this.el.length.value = `${audioSeconds.toFixed(1)} s`;
  }

  finished(started) {
    const stats = this.stats;
    stats.doneAt = performance.now();
    stats.playedAtDone = this.player.playedSeconds();
    stats.underruns = this.player.underruns;
    stats.state = "done";
    const seconds = stats.samplesScheduled / stats.rate;
    stats.rtf = (stats.doneAt - started) / 1000 / seconds;
    this.el.rtf.value = Number.isFinite(stats.rtf) ? stats.rtf.toFixed(2) : "–";
    this.say(`Done: ${seconds.toFixed(1)} s of audio at ${stats.rate} Hz, generated in ${((stats.doneAt - started) / 1000).toFixed(1)} s.`);
  }

  /** Abort the request (the server cancels the generation) and silence what was scheduled. */
  stop() {
    const controller = this.controller;
    this.controller = null;
    this.player.stop();
    if (!controller) return;
    controller.abort();
    Object.assign(this.stats, { state: "stopped", stoppedAt: performance.now() });
    this.busy(false);
    this.say("Stopped.");
  }

  async download() {
    if (!this.el.text.value.trim()) {
      this.say("Type something to speak first.", true);
      return;
    }
    const format = this.el.format.value;
    const body = { ...this.body(format), stream: false };
    this.el.download.disabled = true;
    this.say(`Preparing the ${format} file…`);
    try {
      const blob = await (await this.api.fetch("v1/audio/speech", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      })).blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `speech.${EXTENSIONS[format] || format}`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      this.say(`Downloaded speech.${EXTENSIONS[format] || format} (${(blob.size / 1024).toFixed(0)} KiB).`);
    } catch (error) {
      this.say(error.message, true);
    } finally {
      this.el.download.disabled = this.models.length === 0;
    }
  }
}
