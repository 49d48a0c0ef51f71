// The Status panel: the served models and their start-up state (GET /health), queue depth, requests in
// flight and the latency means (GET /metrics). Both routes are open without a key; polled every 2 s while
// the page is visible.

import { apiUrl } from "./api.js";

const POLL_MS = 2000;

/** Prometheus text → Map(metric name → value summed over its label sets). */
export function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    if (Number.isFinite(value)) values.set(match[1], (values.get(match[1]) || 0) + value);
  }
  return values;
}

function mean(metrics, name) {
  const count = metrics.get(`${name}_count`);
  return count ? metrics.get(`${name}_sum`) / count : null;
}

export class StatusPanel {
  constructor() {
    this.models = [];
    this.health = document.getElementById("health");
    this.table = document.getElementById("models");
    this.outputs = Object.fromEntries(
      [...document.querySelectorAll("[data-metric]")].map((el) => [el.dataset.metric, el]),
    );
    /** The last readings, for people and for tests. */
    this.stats = { health: null, metrics: {} };
  }

  setModels(models) {
    this.models = models;
    this.render();
  }

  start() {
    const tick = async () => {
      if (!document.hidden) await this.poll();
      this.timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  async poll() {
    try {
      const [health, metrics] = await Promise.all([
        fetch(apiUrl("health")).then((r) => r.json()),
        fetch(apiUrl("metrics")).then((r) => (r.ok ? r.text() : "")),
      ]);
      this.stats.health = health;
      const m = parseMetrics(metrics);
      const ttfa = mean(m, "speechserve_time_to_first_audio_seconds");
      const rtf = mean(m, "speechserve_real_time_factor");
      this.stats.metrics = {
        waiting: m.get("speechserve_queue_waiting") ?? 0,
        running: m.get("speechserve_queue_running") ?? 0,
        speech: m.get("speechserve_speech_in_flight") ?? 0,
        text: m.get("speechserve_text_in_flight") ?? 0,
        cancelled: (m.get("speechserve_speech_cancelled_total") ?? 0) + (m.get("speechserve_text_cancelled_total") ?? 0),
        requests: m.get("speechserve_requests_total") ?? 0,
        ttfa: ttfa === null ? "–" : `${Math.round(ttfa * 1000)} ms`,
        rtf: rtf === null ? "–" : rtf.toFixed(2),
      };
      this.stats.polledAt = performance.now();
    } catch (error) {
      this.stats.health = { status: "unreachable", progress: [], error: error.message };
    }
    this.render();
  }

  render() {
    const health = this.stats.health;
    this.health.textContent = health ? health.status : "…";
    this.health.className = health && health.status !== "ok" ? "error" : "";
    const progress = new Map((health?.progress || []).map((p) => [p.id, p]));
    const ids = [...new Set([...this.models.map((m) => m.id), ...progress.keys()])];
    this.table.replaceChildren(...ids.map((id) => {
      const model = this.models.find((m) => m.id === id);
      const p = progress.get(id);
      const state = p ? p.state + (p.seconds != null ? ` (${p.seconds.toFixed(1)} s)` : "") : "";
      const row = document.createElement("tr");
      const cells = [id, model ? model.capabilities.join(", ") : "", model?.sample_rate ? `${model.sample_rate / 1000} kHz` : "", state];
      for (const [i, text] of cells.entries()) {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    for (const [name, value] of Object.entries(this.stats.metrics)) {
      if (this.outputs[name]) this.outputs[name].value = String(value);
    }
  }
}
