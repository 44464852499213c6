// The HTTP API (docs/api.md). Same-origin fetches carry Studio's session cookie.

const config = JSON.parse(document.getElementById("app")?.dataset.config || "{}");
export const API = (config.api || "/api").replace(/\/$/, "");
export const DEMO_URL = config.demoUrl || `${location.origin}/demo`;
export const VERSION = config.version || "";

export class ApiError extends Error {
  constructor(status, payload) {
    super((payload && payload.error) || `HTTP ${status}`);
    this.status = status;
    this.payload = payload || {};
    this.errors = (payload && payload.errors) || [];
  }
}

// 409 Conflict: the server's state moved on first (a prompt already answered, a
// run no longer paused or already finished). Expected in a live UI, not a failure.
export function isConflict(err) {
  return err instanceof ApiError && err.status === 409;
}

// With FLOWRUN_TOKEN set, Studio needs its cookie: opening /?token=… sets it.
let tokenNoticeShown = false;
export function needsToken() {
  if (tokenNoticeShown) return;
  tokenNoticeShown = true;
  document.dispatchEvent(new CustomEvent("flowrun:unauthorized"));
}

async function request(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${API}${path}`, init);
  const text = await res.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = { error: text.slice(0, 300) };
  }
  if (!res.ok) {
    if (res.status === 401) needsToken();
    throw new ApiError(res.status, payload);
  }
  return payload;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body ?? {}),
  put: (path, body) => request("PUT", path, body),
  del: (path) => request("DELETE", path),

  listFlows: () => request("GET", "/flows"),
  getFlow: (name) => request("GET", `/flows/${encodeURIComponent(name)}`),
  saveFlow: (name, doc) => request("PUT", `/flows/${encodeURIComponent(name)}`, doc),
  deleteFlow: (name) => request("DELETE", `/flows/${encodeURIComponent(name)}`),
  validate: (config) => request("POST", "/validate", { config }),
  importFlow: (format, content) => request("POST", "/import", { format, content }),
  provideInput: (executionId, stepIndex, userInput) =>
    request("POST", "/provide-input", { executionId, stepIndex, userInput }),
  stop: (id) => request("POST", `/executions/${encodeURIComponent(id)}/stop`, {}),
  resume: (id) => request("POST", `/executions/${encodeURIComponent(id)}/continue`, {}),
  executions: (limit = 50, flow = "") =>
    request("GET", `/executions?limit=${limit}${flow ? `&flow=${encodeURIComponent(flow)}` : ""}`),
  execution: (id) => request("GET", `/executions/${encodeURIComponent(id)}`),
  executeNode: (body) => request("POST", "/execute-node", body),
};

// Lists come back either bare or wrapped ({"flows": [...]}); accept both.
export function listOf(payload, key) {
  if (Array.isArray(payload)) return payload;
  if (payload && Array.isArray(payload[key])) return payload[key];
  if (payload && Array.isArray(payload.items)) return payload.items;
  return [];
}
