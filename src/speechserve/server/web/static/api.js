// The server's HTTP API: the API key on every call, OpenAI's error envelope turned into ApiError, and a 401
// answered by asking for the key (then the call is made again).

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.type = error.type || null;
    this.code = error.code || null;
    this.param = error.param || null;
    this.retryAfter = null;
  }

  static async from(response) {
    let error = {};
    try {
      const body = await response.json();
      error = body.error && typeof body.error === "object" ? body.error : { message: body.detail || "" };
    } catch {
      error = { message: `${response.status} ${response.statusText}` };
    }
    const out = new ApiError(response.status, error);
    out.retryAfter = Number(response.headers.get("retry-after")) || null;
    return out;
  }
}

/** Resolves `path` ("v1/models") against the page, so the playground also works below a path prefix. */
export function apiUrl(path) {
  return new URL(path, document.baseURI);
}

export class Api {
  constructor(keyPrompt) {
    this.keys = keyPrompt;
  }

  get key() {
    return this.keys.key;
  }

  /** fetch() with the key; resolves to an ok Response, rejects with ApiError (or the fetch's AbortError). */
  async fetch(path, init = {}) {
    for (;;) {
      const headers = new Headers(init.headers);
      if (this.key) headers.set("Authorization", `Bearer ${this.key}`);
      const response = await fetch(apiUrl(path), { ...init, headers });
      if (response.ok) return response;
      const error = await ApiError.from(response);
      if (response.status !== 401) throw error;
      const key = await this.keys.ask(error.message);
      if (key === null) throw error;
    }
  }

  async json(path, init) {
    return (await this.fetch(path, init)).json();
  }

  /** The served models; waits while they load (503 `loading`), calling `onWait(error)` each time. */
  async models(onWait) {
    for (;;) {
      try {
        return (await this.json("v1/models")).data;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 503) throw error;
        onWait(error);
        await new Promise((r) => setTimeout(r, 1000 * Math.min(error.retryAfter || 1, 5)));
      }
    }
  }
}

/** `can(model, "speech")`: the model answers that task (capabilities of GET /v1/models). */
export function can(model, task) {
  return (model.capabilities || []).includes(task);
}
