// The Transcribe panel: an uploaded file streamed back as text (`stream=true` SSE), or the microphone live
// through WS /v1/realtime; the transcript copied as text, or as SRT / VTT asked of the server for the same
// audio (the file, or a WAV of what the microphone sent).

import { can } from "./api.js";
import { Microphone, RATE, wavBlob } from "./mic.js";
import { RealtimeSession } from "./realtime.js";
import { sseEvents } from "./sse.js";

const $ = (id) => document.getElementById(id);

/** Copy `text` to the clipboard (the async API where allowed, else a selection + execCommand). */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch {
    /* not a secure context, or no permission: fall back */
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}

export class TranscribePanel {
  constructor(api) {
    this.api = api;
    this.el = {
      model: $("asr-model"), language: $("language"), file: $("audio-file"), transcribe: $("transcribe-button"),
      realtimeModel: $("realtime-model"), delay: $("delay"), record: $("record-button"),
      transcript: $("transcript"), status: $("transcribe-status"),
    };
    this.source = null; // what the transcript came from: {blob, name, model}
    this.items = new Map(); // realtime item id → its paragraph
    /** What the page did, for people and for tests. */
    this.stats = { state: "idle" };
    this.el.transcribe.addEventListener("click", () => this.transcribeFile());
    this.el.record.addEventListener("click", () => (this.recording ? this.stopRecording() : this.record()));
    for (const button of document.querySelectorAll("[data-copy]")) {
      button.addEventListener("click", () => this.copy(button.dataset.copy));
    }
  }

  setModels(models) {
    const fill = (select, list) => {
      const current = select.value;
      select.replaceChildren(...list.map((m) => new Option(m.id, m.id)));
      if (list.some((m) => m.id === current)) select.value = current;
      select.disabled = list.length === 0;
    };
    const text = models.filter((m) => can(m, "transcription"));
    const live = models.filter((m) => can(m, "realtime"));
    fill(this.el.model, text);
    fill(this.el.realtimeModel, live);
    this.el.transcribe.disabled = text.length === 0;
    this.el.record.disabled = live.length === 0;
    this.el.record.title = live.length ? "" : "no model on this server serves /v1/realtime";
    if (!text.length) this.say("No model on this server transcribes.");
  }

  say(message, error = false) {
    this.el.status.textContent = message;
    this.el.status.classList.toggle("error", error);
  }

  get text() {
    return [...this.el.transcript.querySelectorAll("p")].map((p) => p.textContent.trim()).filter(Boolean).join("\n");
  }

  paragraph() {
    const p = document.createElement("p");
    p.className = "partial";
    this.el.transcript.append(p);
    return p;
  }

  form(blob, name, model, format) {
    const form = new FormData();
    form.set("file", blob, name);
    form.set("model", model);
    form.set("response_format", format);
    const language = this.el.language.value.trim().toLowerCase();
    if (language) form.set("language", language);
    return form;
  }

  async transcribeFile() {
    const file = this.el.file.files[0];
    if (!file) {
      this.say("Choose an audio file first.", true);
      this.el.file.focus();
      return;
    }
    const model = this.el.model.value;
    this.el.transcript.replaceChildren();
    const p = this.paragraph();
    this.stats = { state: "transcribing", source: "file", deltas: 0, text: "" };
    this.el.transcribe.disabled = true;
    this.say(`Transcribing ${file.name}…`);
    try {
      const form = this.form(file, file.name, model, "json");
      form.set("stream", "true");
      const response = await this.api.fetch("v1/audio/transcriptions", { method: "POST", body: form });
      for await (const event of sseEvents(response)) {
        if (event.type === "transcript.text.delta") {
          p.append(event.delta);
          this.stats.deltas += 1;
        } else if (event.type === "transcript.text.done") {
          p.textContent = event.text;
        } else if (event.type === "error") {
          throw new Error(event.error?.message || "the transcription failed");
        }
      }
      p.classList.remove("partial");
      this.source = { blob: file, name: file.name, model };
      Object.assign(this.stats, { state: "done", text: this.text });
      this.say(`Done: ${this.stats.deltas} pieces of text streamed.`);
    } catch (error) {
      Object.assign(this.stats, { state: "error", error: error.message });
      this.say(error.message, true);
    } finally {
      this.el.transcribe.disabled = false;
    }
  }

  async record() {
    const model = this.el.realtimeModel.value;
    this.recording = true;
    this.el.record.setAttribute("aria-pressed", "true");
    this.el.transcript.replaceChildren();
    this.items.clear();
    this.chunks = [];
    this.stats = { state: "connecting", source: "microphone", deltas: 0, samplesSent: 0, deltasWhileRecording: 0 };
    this.say("Connecting…");
    try {
      await this.api.fetch("v1/models"); // a WebSocket cannot show a 401: check (and ask for) the key first
      const session = new RealtimeSession({
        delta: (id, text) => this.delta(id, text),
        completed: (id, text) => this.completed(id, text),
        error: (message) => this.say(message, true),
        closed: () => this.recording && this.stopRecording("The realtime connection closed."),
      });
      this.session = session;
      await session.connect(model, this.el.delay.value, this.api.key);
      const mic = new Microphone();
      this.mic = mic;
      await mic.start((pcm) => {
        session.append(pcm); // also the last block, delivered while stopRecording flushes
        this.chunks.push(pcm);
        this.stats.samplesSent += pcm.length;
      });
      if (!this.recording) return mic.stop(); // Record pressed again while the microphone was starting
      this.stats.state = "recording";
      this.say("Listening… press Record again to stop.");
    } catch (error) {
      await this.stopRecording(error.message);
    }
  }

  delta(id, text) {
    if (!this.items.has(id)) this.items.set(id, this.paragraph());
    this.items.get(id).append(text);
    this.stats.deltas += 1;
    if (this.stats.state === "recording") this.stats.deltasWhileRecording += 1;
  }

  completed(id, transcript) {
    if (!this.items.has(id)) this.items.set(id, this.paragraph());
    const p = this.items.get(id);
    p.textContent = transcript;
    p.classList.remove("partial");
  }

  async stopRecording(error = null) {
    if (!this.recording) return;
    this.recording = false;
    this.el.record.setAttribute("aria-pressed", "false");
    this.stats.state = "finishing";
    this.say(error || "Finishing…", Boolean(error));
    const mic = this.mic;
    const session = this.session;
    this.mic = this.session = null;
    await mic?.stop();
    if (session?.socket && !error) await session.finish();
    session?.close();
    if (this.chunks.length) {
      this.source = { blob: wavBlob(this.chunks, RATE), name: "microphone.wav", model: this.el.realtimeModel.value };
    }
    Object.assign(this.stats, { state: error ? "error" : "done", text: this.text, error });
    if (!error) this.say(`Done: ${(this.stats.samplesSent / RATE).toFixed(1)} s of audio heard.`);
  }

  /** Copy the transcript: as shown (text), or SRT / VTT asked of the server for the same audio. */
  async copy(format) {
    try {
      let text = this.text;
      if (format !== "text") {
        if (!this.source) throw new Error("Transcribe a file or a recording first.");
        const { blob, name, model } = this.source;
        this.say(`Asking for ${format.toUpperCase()}…`);
        const response = await this.api.fetch("v1/audio/transcriptions", {
          method: "POST",
          body: this.form(blob, name, model, format),
        });
        text = await response.text();
      }
      await copyText(text);
      this.stats.copied = { format, text };
      this.say(`Copied the transcript as ${format === "text" ? "text" : format.toUpperCase()}.`);
    } catch (error) {
      this.say(error.message, true);
    }
  }
}
