// The playground's entry point: the key prompt, the three panels, the served models (waiting while they
// load). `window.playground` exposes each panel's stats (what reached the audio graph, timings, the
// transcript) for the curious and for the browser tests.

import { Api } from "./api.js";
import { KeyPrompt } from "./key.js";
import { SpeakPanel } from "./speak.js";
import { StatusPanel } from "./status.js";
import { TranscribePanel } from "./transcribe.js";

const notice = document.getElementById("notice");

function say(message) {
  notice.textContent = message || "";
  notice.hidden = !message;
}

async function loadModels(api, panels) {
  try {
    const models = await api.models((error) => say(`${error.message} Waiting…`));
    say("");
    for (const panel of panels) await panel.setModels(models);
    document.body.dataset.ready = "true";
  } catch (error) {
    say(error.status === 401 ? "This server needs an API key: use the “API key” button above." : error.message);
  }
}

function main() {
  const keys = new KeyPrompt();
  const api = new Api(keys);
  const status = new StatusPanel();
  const speak = new SpeakPanel(api);
  const transcribe = new TranscribePanel(api);
  const panels = [speak, transcribe, status];
  window.playground = {
    get speak() { return speak.stats; },
    get transcribe() { return transcribe.stats; },
    get status() { return status.stats; },
  };
  keys.onChange = () => loadModels(api, panels);
  status.start();
  loadModels(api, panels);
}

main();
