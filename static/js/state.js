// The open flow document and its workspace file: one shared store with events.

const listeners = new Map();

export const state = {
  doc: null, // the flow document (source of truth for form and JSON views)
  file: null, // workspace file name (without .json), null when never saved
  dirty: false,
  edits: 0, // edits made in place (form or JSON), counted: see openFlow
  errors: [], // last /api/validate errors
  lastResponses: {}, // node id -> last response body seen (for autocomplete/try-it)
};

export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
}

export function emit(name, detail) {
  for (const fn of listeners.get(name) || []) fn(detail);
}

// Replace the document (open/new/import/JSON edit). `source` tells views who
// changed it so they do not re-render over the user's typing.
export function setDoc(doc, { file, dirty = false, source = "load" } = {}) {
  state.doc = doc;
  if (file !== undefined) state.file = file;
  setDirty(dirty);
  emit("doc", { source });
}

// A field of the document changed in place.
export function touched(source = "form") {
  state.edits += 1;
  setDirty(true);
  emit("doc", { source });
}

export function setDirty(dirty) {
  state.dirty = dirty;
  emit("dirty", dirty);
}

export function slug(name) {
  const s = String(name || "")
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 60);
  return s || "flow";
}

const FLOW_KEYS = ["$schema", "name", "description", "variables", "defaults", "nodes"];
const NODE_KEYS = [
  "id", "name", "method", "url", "headers", "body", "bodyFormat", "userPrompts",
  "conditions", "validations", "retry", "delayMs", "timeout", "launchBrowser",
];

function ordered(obj, keys) {
  const out = {};
  for (const k of keys) if (k in obj) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out)) out[k] = obj[k];
  return out;
}

// FlowSphere's older spellings, folded in as the server does (flowrun/flow.py):
// `steps` → `nodes`, `prompts` → `userPrompts`, one `condition` → `conditions`.
function legacyNode(node) {
  const n = { ...node };
  if (!("userPrompts" in n) && n.prompts && typeof n.prompts === "object" && !Array.isArray(n.prompts)) {
    n.userPrompts = n.prompts;
    delete n.prompts;
  }
  if (!("conditions" in n) && n.condition && typeof n.condition === "object" && !Array.isArray(n.condition)) {
    n.conditions = [n.condition];
    delete n.condition;
  }
  return n;
}

// Put a flow's keys in reading order (the server may hand them back sorted).
export function canonical(doc) {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return doc;
  const src = { ...doc };
  if (!("nodes" in src) && Array.isArray(src.steps)) {
    src.nodes = src.steps;
    delete src.steps;
  }
  const out = ordered(src, FLOW_KEYS);
  if (Array.isArray(out.nodes)) {
    out.nodes = out.nodes.map((n) => (n && typeof n === "object" && !Array.isArray(n) ? ordered(legacyNode(n), NODE_KEYS) : n));
  }
  return out;
}
