// A transcription session on WS /v1/realtime in OpenAI's GA events: `session.update` (PCM16 at 24 kHz, the
// model and its delay), `input_audio_buffer.append` / `.commit`; the server answers with
// `conversation.item.input_audio_transcription.delta` while audio still arrives, then `.completed`.
// Browsers cannot set headers on a WebSocket, so the API key rides in the subprotocol
// `openai-insecure-api-key.<key>` (OpenAI's convention).

import { apiUrl } from "./api.js";
import { RATE } from "./mic.js";

function base64(int16) {
  const bytes = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export class RealtimeSession {
  /** `on.delta(itemId, text)`, `on.completed(itemId, transcript)`, `on.error(message)`, `on.closed()`. */
  constructor(on) {
    this.on = on;
    this.socket = null;
    this.open = new Set(); // items heard of but not completed
    this.waiters = [];
    this.committing = false; // a commit was sent and not answered yet
  }

  /** Connect and configure; resolves once the server confirmed the session (`session.updated`). */
  connect(model, delay, key) {
    const url = apiUrl("v1/realtime?intent=transcription");
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const protocols = ["realtime", ...(key ? [`openai-insecure-api-key.${key}`] : [])];
    return new Promise((resolve, reject) => {
      let configured = false;
      const socket = new WebSocket(url, protocols);
      this.socket = socket;
      socket.onopen = () => this.send({
        type: "session.update",
        session: {
          type: "transcription",
          audio: { input: { format: { type: "audio/pcm", rate: RATE }, transcription: { model, delay } } },
        },
      });
      socket.onmessage = (message) => {
        const event = JSON.parse(message.data);
        if (event.type === "session.updated" && !configured) {
          configured = true;
          resolve();
        } else if (event.type === "error" && !configured) {
          reject(new Error(event.error?.message || "the session was refused"));
        } else {
          this.handle(event);
        }
      };
      socket.onclose = (event) => {
        this.socket = null;
        if (!configured) reject(new Error(`the realtime connection closed (${event.code} ${event.reason || ""})`.trim()));
        this.settle();
        this.on.closed?.();
      };
    });
  }

  handle(event) {
    switch (event.type) {
      case "input_audio_buffer.committed":
        this.open.add(event.item_id);
        this.committing = false;
        break;
      case "conversation.item.input_audio_transcription.delta":
        this.open.add(event.item_id);
        this.on.delta(event.item_id, event.delta);
        break;
      case "conversation.item.input_audio_transcription.completed":
        this.open.delete(event.item_id);
        this.on.completed(event.item_id, event.transcript);
        break;
      case "conversation.item.input_audio_transcription.failed":
        this.open.delete(event.item_id);
        this.on.error(event.error?.message || "transcription failed");
        break;
      case "error":
        if (event.error?.code !== "input_audio_buffer_commit_empty") this.on.error(event.error?.message || "error");
        this.committing = false;
        break;
      default:
        break;
    }
    this.settle();
  }

  send(event) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(event));
  }

  append(pcm16) {
    this.send({ type: "input_audio_buffer.append", audio: base64(pcm16) });
  }

  /** Commit the audio sent so far; resolves once every item of the session has its transcript. */
  finish(timeoutMs = 60_000) {
    this.committing = true;
    this.send({ type: "input_audio_buffer.commit" });
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  settle() {
    // the commit's answer (committed or an empty-buffer error) has come and nothing is left open
    const done = !this.socket || (!this.committing && this.open.size === 0);
    if (!done) return;
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  close() {
    this.socket?.close(1000);
  }
}
