// Studio's one store (see store.js) and the edits every view makes through it.

import { createStore, formatPath, getIn, parsePath } from "./store.js";

function pref(name, fallback) {
  try {
    return localStorage.getItem(`flowrun.${name}`) || fallback;
  } catch {
    return fallback;
  }
}

export function savePref(name, value) {
  try {
    localStorage.setItem(`flowrun.${name}`, value);
  } catch {
    /* storage unavailable: the choice lasts for this page only */
  }
}

export const store = createStore({
  ui: {
    view: pref("view", "form"),
    expanded: new Set(),
    settingsOpen: false,
    order: pref("order", "oldest"),
    dock: pref("dock", "beside"),
    compact: pref("compact", "") === "1",
    runOpen: false,
  },
  // Known responses: node id -> {body, headers}, from runs and Try it out; they feed
  // autocomplete and the path suggestions of the check builders.
  known: {},
  errors: { errors: [], warnings: [], checked: false },
  env: { available: false, list: [], selected: pref("environment", "") },
  runs: { live: null },
});

export const flow = () => store.get().flow;

// A newly opened flow shows its steps open when there are few, else the first.
store.subscribe((s, prev, meta) => {
  if (meta.kind !== "load") return;
  const keys = s.keys;
  store.update("ui", (ui) => ({ ...ui, expanded: new Set(keys.length <= 3 ? keys : keys.slice(0, 1)) }));
});

// Unsaved: the flow differs from what was loaded or saved, or text waits in a draft.
export function isDirty(s = store.get()) {
  if (!s.flow) return false;
  if (Object.keys(s.drafts).length) return true;
  return s.saved === null || JSON.stringify(s.flow) !== s.saved;
}

// Objects that mean nothing once empty (a retry with no count and no interval) go
// with their last key.
const GONE_WHEN_EMPTY = /(^|\.)retry$/;

export function setValue(path, value, { origin, label = "edit", coalesce = true } = {}) {
  if (value === undefined) {
    const keys = parsePath(path);
    const parentPath = formatPath(keys.slice(0, -1));
    const parent = getIn(store.get().flow, parentPath);
    if (GONE_WHEN_EMPTY.test(parentPath) && parent && typeof parent === "object" && Object.keys(parent).every((k) => k === keys[keys.length - 1])) {
      path = parentPath;
    }
  }
  store.dispatch({
    patches: [{ op: "set", path, value }],
    drafts: { [path]: null },
    label,
    origin,
    coalesce: coalesce ? `set:${path}` : null,
  });
}

// Text that does not parse yet: kept as typed, with the reason it is not a value.
export function setDraft(path, raw, error, { origin } = {}) {
  store.dispatch({ drafts: { [path]: { raw, error } }, origin, label: "edit", coalesce: `set:${path}` });
}

export const insertAt = (path, index, value, label = "add") =>
  store.dispatch({ patches: [{ op: "insert", path, index, value }], label });

export const removeAt = (path, index, label = "delete") =>
  store.dispatch({ patches: [{ op: "remove", path, index }], label });

export const moveItem = (path, from, to, label = "move") =>
  store.dispatch({ patches: [{ op: "move", path, from, to }], label });

export function setKnown(id, body, headers) {
  if (!id) return;
  store.update("known", (k) => ({ ...k, [id]: { body, headers: headers || {} } }));
}

// ---- naming paths for people -----------------------------------------------------

const FIELD_LABELS = {
  name: "Name",
  id: "ID",
  description: "Description",
  url: "URL",
  method: "Method",
  headers: "Headers",
  body: "Body",
  userPrompts: "Prompts",
  validations: "Checks",
  conditions: "Conditions",
  timeout: "Timeout",
  retry: "Retry",
  delayMs: "Delay",
  launchBrowser: "Open in browser",
  variables: "Variables",
  baseUrl: "Base URL",
};

function describePath(path, doc = flow()) {
  if (!path) return "The JSON view";
  const keys = parsePath(path);
  if (keys[0] === "nodes" && typeof keys[1] === "number") {
    const node = getIn(doc, ["nodes", keys[1]]) || {};
    const field = FIELD_LABELS[keys[2]] || keys[2] || "Step";
    const who = node.name || node.id;
    return `${field} of step ${keys[1] + 1}${who ? ` (${who})` : ""}`;
  }
  if (keys[0] === "defaults") return `Default ${(FIELD_LABELS[keys[1]] || keys[1] || "settings").toLowerCase()}`;
  return FIELD_LABELS[keys[0]] || keys[0];
}

// Drafts in reading order: the JSON view first, then flow settings, then steps.
export function draftList(s = store.get()) {
  const rank = (p) => {
    if (!p) return [-2, 0];
    const m = /^nodes\[(\d+)\]/.exec(p);
    return m ? [Number(m[1]), 0] : [-1, 0];
  };
  return Object.entries(s.drafts)
    .map(([path, d]) => ({ path, error: d.error, label: describePath(path, s.flow) }))
    .sort((a, b) => rank(a.path)[0] - rank(b.path)[0] || a.path.localeCompare(b.path));
}

// ---- flow documents ----------------------------------------------------------------

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
  "id", "name", "description", "method", "url", "headers", "body", "bodyFormat", "userPrompts",
  "conditions", "validations", "skipDefaultValidations", "skipDefaultHeaders", "retry", "delayMs",
  "timeout", "launchBrowser",
];

function ordered(obj, keys) {
  const out = {};
  for (const k of keys) if (k in obj) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out)) out[k] = obj[k];
  return out;
}

// FlowSphere's older spellings, folded in as the server does:
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
