// The HTTP API (docs/api.md). Same-origin fetches carry Studio's session cookie.

export const config = JSON.parse(document.getElementById("app")?.dataset.config || "{}");
export const API = (config.api || "/api").replace(/\/$/, "");
export const DEMO_URL = config.demoUrl || `${location.origin}/demo`;
export const VERSION = config.version || "";
// A prompt key or variable name containing one of the server's secret words (any
// case) holds a secret: the same rule the server masks by, so what Studio hides and
// what the server hides never differ.
export const SECRET_KEY = new RegExp((config.secretWords || []).join("|"), "i");

export class ApiError extends Error {
  constructor(status, payload) {
    super((payload && payload.error) || `HTTP ${status}`);
    this.status = status;
    this.payload = payload || {};
    this.errors = (payload && payload.errors) || [];
  }
}

// The server could not be reached at all (fetch's "Failed to fetch"): said in words,
// and connection.js starts watching for the server's return.
export class Unreachable extends Error {
  constructor() {
    super("the flowrun server cannot be reached");
    this.unreachable = true;
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

export function signal(name) {
  document.dispatchEvent(new CustomEvent(`flowrun:${name}`));
}

// fetch that says "unreachable" in one way for every caller.
export async function send(url, init) {
  let res;
  try {
    res = await fetch(url, { credentials: "same-origin", ...init });
  } catch (err) {
    if (init && init.signal && init.signal.aborted) throw err;
    signal("unreachable");
    throw new Unreachable();
  }
  signal("reachable");
  return res;
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await send(`${API}${path}`, init);
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

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

const enc = encodeURIComponent;

export const api = {
  listFlows: () => request("GET", "/flows"),
  getFlow: (name) => request("GET", `/flows/${enc(name)}`),
  saveFlow: (name, doc) => request("PUT", `/flows/${enc(name)}`, doc),
  deleteFlow: (name) => request("DELETE", `/flows/${enc(name)}`),
  validate: (config) => request("POST", "/validate", { config }),
  importFlow: (format, content) => request("POST", "/import", { format, content }),
  provideInput: (executionId, stepIndex, userInput) =>
    request("POST", "/provide-input", { executionId, stepIndex, userInput }),
  stop: (id, force = false) => request("POST", `/executions/${enc(id)}/stop`, force ? { force: true } : {}),
  resume: (id) => request("POST", `/executions/${enc(id)}/continue`, {}),
  // {limit, before, flow, status, since, until, q} -> {executions, next}
  executions: (params = {}) => request("GET", `/executions${query(params)}`),
  execution: (id) => request("GET", `/executions/${enc(id)}`),
  executeNode: (body) => request("POST", "/execute-node", body),
  environments: () => request("GET", "/environments"),
  environment: (name) => request("GET", `/environments/${enc(name)}`),
  saveEnvironment: (name, env) => request("PUT", `/environments/${enc(name)}`, env),
  deleteEnvironment: (name) => request("DELETE", `/environments/${enc(name)}`),
};

// Lists come back either bare or wrapped ({"flows": [...]}); accept both.
export function listOf(payload, key) {
  if (Array.isArray(payload)) return payload;
  if (payload && Array.isArray(payload[key])) return payload[key];
  if (payload && Array.isArray(payload.items)) return payload.items;
  return [];
}
