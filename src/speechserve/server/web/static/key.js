// The API key: kept in this browser's localStorage, asked for in a dialog when the server answers 401.

const STORAGE = "speechserve.apiKey";

export function storedKey() {
  try {
    return localStorage.getItem(STORAGE) || "";
  } catch {
    return ""; // storage disabled: the key lives as long as the page
  }
}

function storeKey(key) {
  try {
    if (key) localStorage.setItem(STORAGE, key);
    else localStorage.removeItem(STORAGE);
  } catch {
    /* storage disabled */
  }
}

/** The key dialog. `ask(reason)` resolves to the key entered, or null when the user cancels; calls made
 * while the dialog is open share its answer. `onChange(key)` runs when the user saves or forgets a key. */
export class KeyPrompt {
  constructor() {
    this.dialog = document.getElementById("key-dialog");
    this.input = document.getElementById("api-key");
    this.reason = document.getElementById("key-reason");
    this.state = document.getElementById("key-state");
    this.key = storedKey();
    this.pending = null;
    this.onChange = () => {};
    this.defaultReason = this.reason.textContent;
    document.getElementById("key-open").addEventListener("click", () => this.ask(null).then((key) => {
      if (key !== null) this.onChange(key);
    }));
    this.dialog.addEventListener("close", () => this.closed(this.dialog.returnValue));
    this.showState();
  }

  ask(reason) {
    if (this.pending) return this.pending.promise;
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    this.pending = { promise, resolve };
    this.reason.textContent = reason
      ? `The server answered: “${reason}”. Enter its API key (kept in this browser only).`
      : this.defaultReason;
    this.input.value = this.key;
    this.dialog.returnValue = "";
    this.dialog.showModal();
    this.input.focus();
    return promise;
  }

  closed(action) {
    let answer = null;
    if (action === "save" && this.input.value.trim()) answer = this.input.value.trim();
    if (action === "forget") this.key = "";
    if (answer !== null) this.key = answer;
    if (action === "save" || action === "forget") storeKey(this.key);
    this.showState();
    const pending = this.pending;
    this.pending = null;
    if (action === "forget") this.onChange("");
    pending?.resolve(answer);
  }

  showState() {
    this.state.textContent = this.key ? "set" : "none";
  }
}
