// The flow editor: a form per node plus flow settings, and a JSON view kept in
// sync with it. Live validation through /api/validate puts each error next to
// its field.

import { api, ApiError } from "./api.js";
import { attachAutocomplete } from "./autocomplete.js";
import { $, $$, clear, debounce, h, icon } from "./dom.js";
import { on, state, touched } from "./state.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const formView = $("#form-view");
const jsonText = $("#json-text");
const jsonError = $("#json-error");
const views = $("#editor-views");
const validity = $("#validity");
const generalErrors = $("#general-errors");

let expanded = new Set([0]);
let tryItOut = () => {};

export function onTryItOut(fn) {
  tryItOut = fn;
}

// ---- small field builders --------------------------------------------------------

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function field(label, path, control, { hint, wide } = {}) {
  const id = control.id || nextId("f");
  control.id = id;
  return h(
    "div",
    { class: `field${wide ? " wide" : ""}`, dataset: { path } },
    h("label", { for: id }, label),
    control,
    hint ? h("span", { class: "field-hint" }, hint) : null,
  );
}

function textInput(value, onInput, { placeholder, ph = false, type = "text", label } = {}) {
  const input = h("input", {
    type,
    value: value ?? "",
    placeholder,
    spellcheck: "false",
    autocomplete: "off",
    class: ph ? "ph-input" : null,
    "aria-label": label,
  });
  input.addEventListener("input", () => onInput(input.value));
  return input;
}

function numberInput(value, onValue, opts = {}) {
  return textInput(value ?? "", (v) => onValue(v === "" ? undefined : Number(v)), { ...opts, type: "number" });
}

// An input handler that sets (or, when empty, removes) obj[key].
function setter(obj, key) {
  return (value) => {
    setOrDelete(obj, key, value);
    changed();
  };
}

function setOrDelete(obj, key, value) {
  if (value === undefined || value === "" || (typeof value === "number" && Number.isNaN(value))) delete obj[key];
  else obj[key] = value;
}

function inline(v) {
  if (Array.isArray(v)) return `[${v.map(inline).join(", ")}]`;
  if (v && typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(", ")}}`;
  }
  return JSON.stringify(v);
}

// Arrays of small objects read best one element per line.
function compactJson(value) {
  if (Array.isArray(value) && value.every((v) => JSON.stringify(v).length <= 100)) {
    return value.length ? `[\n${value.map((v) => `  ${inline(v)}`).join(",\n")}\n]` : "[]";
  }
  return JSON.stringify(value, null, 2);
}

// A JSON textarea: the parsed value reaches the document only when it parses.
function jsonArea(value, onValue, { rows = 4, ph = true, placeholder, allowEmpty = true } = {}) {
  const ta = h("textarea", { rows, spellcheck: "false", class: `code-input${ph ? " ph-input" : ""}`, placeholder });
  ta.value = value === undefined ? "" : compactJson(value);
  const fit = () => {
    ta.rows = Math.min(14, Math.max(rows, ta.value.split("\n").length));
  };
  fit();
  ta.addEventListener("input", fit);
  const err = h("p", { class: "field-error local", hidden: true });
  ta.addEventListener("input", () => {
    const text = ta.value.trim();
    if (!text && allowEmpty) {
      err.hidden = true;
      ta.removeAttribute("aria-invalid");
      onValue(undefined);
      return;
    }
    try {
      const parsed = JSON.parse(text);
      err.hidden = true;
      ta.removeAttribute("aria-invalid");
      onValue(parsed);
    } catch (e) {
      err.textContent = `Not valid JSON: ${e.message}`;
      err.hidden = false;
      ta.setAttribute("aria-invalid", "true");
    }
  });
  return [ta, err];
}

function jsonField(label, path, value, onValue, opts = {}) {
  const [ta, err] = jsonArea(value, onValue, opts);
  const f = field(label, path, ta, opts);
  f.append(err);
  return f;
}

// Key/value rows for headers, variables and prompts.
function kvEditor(label, path, obj, onChange, { keyLabel = "Name", valueLabel = "Value", ph = true, addLabel = "Add" } = {}) {
  const wrap = h("div", { class: "field wide kv-field", dataset: { path } });
  const title = h("span", { class: "field-label" }, label);
  const rowsEl = h("div", { class: "kv-rows" });
  // Rows hold text; a value that was not a string (a number variable, say) keeps
  // its JSON type when it is edited, as long as the text still parses.
  let rows = Object.entries(obj || {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v), typeof v !== "string"]);

  const commit = () => {
    const out = {};
    for (const [k, v, typed] of rows) {
      if (!k) continue;
      let value = v;
      if (typed) {
        try {
          value = JSON.parse(v);
        } catch {
          value = v;
        }
      }
      out[k] = value;
    }
    onChange(Object.keys(out).length ? out : undefined);
  };
  const render = () => {
    clear(rowsEl);
    rows.forEach((row, i) => {
      rowsEl.append(
        h(
          "div",
          { class: "kv-row" },
          textInput(row[0], (v) => { row[0] = v; commit(); }, { placeholder: keyLabel, label: `${label} ${keyLabel.toLowerCase()} ${i + 1}` }),
          textInput(row[1], (v) => { row[1] = v; commit(); }, { placeholder: valueLabel, ph, label: `${label} ${valueLabel.toLowerCase()} ${i + 1}` }),
          h("button", { type: "button", class: "btn icon ghost small", "aria-label": `Remove ${label} row ${i + 1}`, onclick: () => { rows.splice(i, 1); commit(); render(); } }, "✕"),
        ),
      );
    });
  };
  render();
  wrap.append(
    h("div", { class: "kv-head" }, title, h("button", { type: "button", class: "btn small ghost", onclick: () => { rows.push(["", "", false]); render(); rowsEl.lastChild?.querySelector("input")?.focus(); } }, `+ ${addLabel}`)),
    rowsEl,
  );
  return wrap;
}

// ---- the form --------------------------------------------------------------------

function changed() {
  touched("form");
}

let settingsOpen = false;

function flowSection(doc) {
  doc.defaults = doc.defaults || {};
  const d = doc.defaults;
  const box = h("section", { class: `panel flow-settings${settingsOpen ? " open" : ""}`, dataset: { path: "" }, "aria-label": "Flow settings" });
  const vars = Object.keys(doc.variables || {}).length;
  const summary = h("span", { class: "flow-summary muted" }, [d.baseUrl || "no base URL", `${vars} variable${vars === 1 ? "" : "s"}`].join(" · "));
  const toggle = h(
    "button",
    { type: "button", class: "node-toggle", "aria-expanded": String(settingsOpen), "aria-controls": "flow-settings-body" },
    h("span", { class: "chev", "aria-hidden": "true" }, "▸"),
    h("span", { class: "node-name" }, "Flow settings"),
    summary,
  );
  const body = h(
    "div",
    { class: "node-body grid grid-3", id: "flow-settings-body", hidden: !settingsOpen },
    field("Flow name", "name", textInput(doc.name, setter(doc, "name"))),
    field("Base URL", "defaults.baseUrl", textInput(d.baseUrl, setter(d, "baseUrl"), { ph: true, placeholder: "https://api.example.com" })),
    field("Default timeout (s)", "defaults.timeout", numberInput(d.timeout, setter(d, "timeout"), { placeholder: "30" })),
    field("Description", "description", textInput(doc.description, setter(doc, "description")), { wide: true }),
    kvEditor("Variables", "variables", doc.variables, (v) => setter(doc, "variables")(v || {}), { addLabel: "Variable", ph: false }),
    kvEditor("Default headers", "defaults.headers", d.headers, setter(d, "headers"), { addLabel: "Header" }),
    jsonField("Default validations", "defaults.validations", d.validations, setter(d, "validations"), { rows: 2, placeholder: '[{"httpStatusCode": 200}]', wide: true }),
  );
  toggle.addEventListener("click", () => {
    settingsOpen = !settingsOpen;
    box.classList.toggle("open", settingsOpen);
    toggle.setAttribute("aria-expanded", String(settingsOpen));
    body.hidden = !settingsOpen;
  });
  box.append(h("div", { class: "node-head" }, toggle, h("span", { class: "node-errors", "aria-live": "polite" })), body);
  return box;
}

function tool(label, title, content, onclick, disabled = false, extra = "") {
  return h(
    "button",
    { type: "button", class: `btn icon ghost small ${extra}`, "aria-label": label, title, disabled, onclick },
    content,
  );
}

function moveNode(from, to) {
  const nodes = state.doc.nodes;
  if (to < 0 || to >= nodes.length || from === to) return;
  const [node] = nodes.splice(from, 1);
  nodes.splice(to, 0, node);
  const wasOpen = expanded.has(from);
  const shifted = new Set();
  for (const i of expanded) {
    if (i === from) continue;
    let j = i;
    if (from < i && i <= to) j = i - 1;
    else if (to <= i && i < from) j = i + 1;
    shifted.add(j);
  }
  if (wasOpen) shifted.add(to);
  expanded = shifted;
  renderForm();
  changed();
  $(`.node[data-index="${to}"] .node-toggle`, formView)?.focus();
}

function nodeCard(node, i, count) {
  const p = `nodes[${i}]`;
  const open = expanded.has(i);
  const bodyId = `node-body-${i}`;
  const card = h("section", { class: `panel node${open ? " open" : ""}`, dataset: { index: i, path: p }, "aria-label": `Step ${i + 1}: ${node.name || node.id || ""}` });
  const methodBadge = h("span", { class: `method m-${(node.method || "GET").toUpperCase()}` }, (node.method || "GET").toUpperCase());
  const titleName = h("span", { class: "node-name" }, node.name || "(unnamed)");
  const titleId = h("span", { class: "node-id" }, node.id || "");
  const titleUrl = h("span", { class: "node-url" }, node.url || "");
  const toggle = h(
    "button",
    { type: "button", class: "node-toggle", "aria-expanded": String(open), "aria-controls": bodyId },
    h("span", { class: "chev", "aria-hidden": "true" }, "▸"),
    h("span", { class: "step-no" }, `#${i + 1}`),
    methodBadge,
    titleName,
    titleId,
    titleUrl,
  );
  toggle.addEventListener("click", () => {
    if (expanded.has(i)) expanded.delete(i);
    else expanded.add(i);
    const nowOpen = expanded.has(i);
    card.classList.toggle("open", nowOpen);
    toggle.setAttribute("aria-expanded", String(nowOpen));
    body.hidden = !nowOpen;
  });
  const handle = h("span", { class: "drag-handle", title: "Drag to reorder", "aria-hidden": "true" }, "⋮⋮");
  const head = h(
    "div",
    { class: "node-head" },
    handle,
    toggle,
    h("span", { class: "node-errors", "aria-live": "polite" }),
    h(
      "div",
      { class: "node-tools" },
      h("button", { type: "button", class: "btn small ghost", onclick: () => tryItOut(i) }, "Try it out"),
      tool(`Move step ${i + 1} up`, "Move up", "↑", () => moveNode(i, i - 1), i === 0),
      tool(`Move step ${i + 1} down`, "Move down", "↓", () => moveNode(i, i + 1), i === count - 1),
      tool(`Duplicate step ${i + 1}`, "Duplicate", icon("copy"), () => duplicate(i)),
      tool(`Delete step ${i + 1}`, "Delete", icon("trash"), () => removeNode(i), false, "danger"),
    ),
  );
  card.append(head);

  const methodSel = h("select", { "aria-label": "Method" }, METHODS.map((m) => h("option", { value: m, selected: (node.method || "GET").toUpperCase() === m }, m)));
  methodSel.addEventListener("change", () => {
    node.method = methodSel.value;
    methodBadge.textContent = node.method;
    methodBadge.className = `method m-${node.method}`;
    changed();
  });
  const retry = node.retry || {};
  const setRetry = (key, v) => {
    const r = { ...(node.retry || {}) };
    setOrDelete(r, key, v);
    if (Object.keys(r).length) node.retry = r;
    else delete node.retry;
    changed();
  };
  const body = h(
    "div",
    { class: "node-body grid", id: bodyId, hidden: !open },
    field("Name", `${p}.name`, textInput(node.name, (v) => { node.name = v; titleName.textContent = v || "(unnamed)"; changed(); })),
    field("ID", `${p}.id`, textInput(node.id, (v) => { node.id = v; titleId.textContent = v; changed(); }), { hint: "letters, digits, _ and -" }),
    h(
      "div",
      { class: "field wide request-line", dataset: { path: `${p}.url` } },
      h("label", { for: `url-${i}` }, "Request"),
      h("div", { class: "request-row" }, h("span", { class: "method-wrap", dataset: { path: `${p}.method` } }, methodSel), textInput(node.url, (v) => { node.url = v; titleUrl.textContent = v; changed(); }, { ph: true, placeholder: "/path or https://…", label: "URL" })),
    ),
    kvEditor("Headers", `${p}.headers`, node.headers, setter(node, "headers"), { addLabel: "Header" }),
    jsonField("Body (JSON)", `${p}.body`, node.body, setter(node, "body"), { rows: 2, placeholder: '{"key": "{{ .vars.name }}"}', wide: true }),
    kvEditor("Prompts", `${p}.userPrompts`, node.userPrompts, setter(node, "userPrompts"), { keyLabel: "Key", valueLabel: "Question", addLabel: "Prompt" }),
    jsonField("Validations", `${p}.validations`, node.validations, setter(node, "validations"), { rows: 2, placeholder: '[{"httpStatusCode": 200}, {"jsonpath": ".id", "exists": true}]', wide: true }),
    advanced(
      node,
      jsonField("Conditions", `${p}.conditions`, node.conditions, setter(node, "conditions"), { rows: 2, placeholder: '[{"source": "node", "node": "login", "httpStatusCode": 200}]', wide: true }),
      h(
        "div",
        { class: "field wide inline-fields" },
        field("Retry count", `${p}.retry.count`, numberInput(retry.count, (v) => setRetry("count", v), { placeholder: "0" })),
        field("Retry interval (ms)", `${p}.retry.intervalMs`, numberInput(retry.intervalMs, (v) => setRetry("intervalMs", v), { placeholder: "500" })),
        field("Delay (ms)", `${p}.delayMs`, numberInput(node.delayMs, setter(node, "delayMs"), { placeholder: "0" })),
        field("Timeout (s)", `${p}.timeout`, numberInput(node.timeout, setter(node, "timeout"), { placeholder: "30" })),
      ),
      field("Open in browser (response path)", `${p}.launchBrowser`, textInput(node.launchBrowser, setter(node, "launchBrowser"), { placeholder: ".authorizeUrl" })),
    ),
  );
  const urlInput = body.querySelector(".request-row input");
  urlInput.id = `url-${i}`;
  card.append(body);

  // Drag to reorder (buttons do the same from the keyboard).
  handle.draggable = true;
  handle.addEventListener("dragstart", (e) => {
    e.dataTransfer.setData("text/x-flowrun-node", String(i));
    e.dataTransfer.effectAllowed = "move";
    card.classList.add("dragging");
  });
  handle.addEventListener("dragend", () => card.classList.remove("dragging"));
  card.addEventListener("dragover", (e) => {
    if (!e.dataTransfer.types.includes("text/x-flowrun-node")) return;
    e.preventDefault();
    card.classList.add("drop-target");
  });
  card.addEventListener("dragleave", () => card.classList.remove("drop-target"));
  card.addEventListener("drop", (e) => {
    e.preventDefault();
    card.classList.remove("drop-target");
    const from = Number(e.dataTransfer.getData("text/x-flowrun-node"));
    if (!Number.isNaN(from)) moveNode(from, i);
  });
  return card;
}

// Less common node fields sit in a disclosure, open when any of them is set.
function advanced(node, ...fields) {
  const used = ["conditions", "retry", "delayMs", "timeout", "launchBrowser"].filter((k) => node[k] !== undefined);
  return h(
    "details",
    { class: "field wide advanced", open: used.length > 0 },
    h("summary", null, "More options", h("span", { class: "muted small" }, used.length ? ` · ${used.join(", ")}` : " · conditions, retry, delay, timeout, open in browser")),
    h("div", { class: "grid" }, ...fields),
  );
}

function newId(nodes) {
  const ids = new Set(nodes.map((n) => n.id));
  let n = nodes.length + 1;
  while (ids.has(`step${n}`)) n += 1;
  return `step${n}`;
}

function addNode() {
  const nodes = state.doc.nodes;
  const id = newId(nodes);
  nodes.push({ id, name: `Step ${nodes.length + 1}`, method: "GET", url: "/items" });
  expanded.add(nodes.length - 1);
  renderForm();
  changed();
  $(`.node[data-index="${nodes.length - 1}"] input`, formView)?.focus();
}

function duplicate(i) {
  const nodes = state.doc.nodes;
  const copy = structuredClone(nodes[i]);
  copy.id = newId(nodes);
  copy.name = `${copy.name || copy.id} (copy)`;
  nodes.splice(i + 1, 0, copy);
  expanded = new Set([...expanded].map((j) => (j > i ? j + 1 : j)));
  expanded.add(i + 1);
  renderForm();
  changed();
}

function removeNode(i) {
  const nodes = state.doc.nodes;
  nodes.splice(i, 1);
  expanded = new Set([...expanded].filter((j) => j !== i).map((j) => (j > i ? j - 1 : j)));
  renderForm();
  changed();
}

export function renderForm() {
  const doc = state.doc;
  clear(formView);
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
    formView.append(h("p", { class: "empty" }, "The JSON view holds something that is not a flow object."));
    return;
  }
  if (!Array.isArray(doc.nodes)) doc.nodes = [];
  formView.append(flowSection(doc));
  const list = h("div", { class: "nodes" });
  doc.nodes.forEach((node, i) => {
    if (node && typeof node === "object") list.append(nodeCard(node, i, doc.nodes.length));
  });
  formView.append(
    h("div", { class: "nodes-head" }, h("h2", { class: "panel-title" }, `Steps (${doc.nodes.length})`), h("span", { class: "muted small" }, "Type {{ in a URL, header, body or prompt for suggestions.")),
    list,
    h("button", { type: "button", class: "btn add-node", onclick: addNode }, "+ Add step"),
  );
  renderErrors();
}

// ---- JSON view -------------------------------------------------------------------

function syncJson() {
  if (document.activeElement === jsonText) return;
  jsonText.value = state.doc ? JSON.stringify(state.doc, null, 2) : "";
  jsonError.hidden = true;
}

// Apply the JSON text to the document if it parses; true when it did.
function applyJson() {
  let parsed;
  try {
    parsed = JSON.parse(jsonText.value);
  } catch (e) {
    jsonError.textContent = `Not valid JSON: ${e.message}`;
    jsonError.hidden = false;
    jsonText.setAttribute("aria-invalid", "true");
    return false;
  }
  jsonError.hidden = true;
  jsonText.removeAttribute("aria-invalid");
  if (JSON.stringify(parsed) !== JSON.stringify(state.doc)) {
    state.doc = parsed;
    touched("json");
  }
  return true;
}

let jsonTimer = null;
jsonText.addEventListener("input", () => {
  clearTimeout(jsonTimer);
  jsonTimer = setTimeout(applyJson, 250);
});
jsonText.addEventListener("blur", () => {
  // Leaving the view applies what was typed at once (no edit lost to the debounce).
  clearTimeout(jsonTimer);
  if (applyJson()) syncJson();
});

export function setView(view) {
  views.dataset.view = view;
  for (const tab of $$('[role="tab"][data-view]')) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  if (view !== "form") syncJson();
  try {
    localStorage.setItem("flowrun.view", view);
  } catch {
    /* ignore */
  }
}

for (const tab of $$('[role="tab"][data-view]')) {
  tab.addEventListener("click", () => setView(tab.dataset.view));
}

// ---- validation ------------------------------------------------------------------

let validationSeq = 0;

export async function validateNow() {
  if (!state.doc) return null;
  const seq = ++validationSeq;
  validity.textContent = "Checking…";
  validity.className = "validity checking";
  let result;
  try {
    result = await api.validate(state.doc);
  } catch (err) {
    if (seq !== validationSeq) return null;
    if (!(err instanceof ApiError)) {
      // The server could not be reached: say so rather than "Checking…" forever.
      validity.textContent = "Not checked: server unreachable";
      validity.className = "validity bad";
      return { valid: null, unreachable: true, errors: [] };
    }
    result = { valid: false, errors: err.errors.length ? err.errors : [{ path: "", message: err.message }] };
  }
  if (seq !== validationSeq) return null;
  state.errors = result.errors || [];
  state.warnings = result.warnings || [];
  renderErrors();
  return result;
}

const validateSoon = debounce(validateNow, 450);

function pathMatches(fieldPath, errPath) {
  if (!errPath.startsWith(fieldPath)) return false;
  const rest = errPath.slice(fieldPath.length);
  return rest === "" || rest[0] === "." || rest[0] === "[";
}

function targetFor(errPath) {
  let best = null;
  for (const el of $$("[data-path]", formView)) {
    const p = el.dataset.path;
    if (pathMatches(p, errPath) && (!best || p.length > best.dataset.path.length)) best = el;
  }
  return best;
}

export function renderErrors() {
  for (const el of $$(".field-error.remote", formView)) el.remove();
  for (const el of $$("[aria-invalid].remote-invalid", formView)) {
    el.removeAttribute("aria-invalid");
    el.classList.remove("remote-invalid");
  }
  for (const el of $$(".node-errors", formView)) el.textContent = "";
  clear(generalErrors);
  generalErrors.hidden = true;
  const errors = state.errors || [];
  const warnings = state.warnings || [];
  const general = [];
  const all = [...errors.map((e) => ({ ...e, level: "error" })), ...warnings.map((e) => ({ ...e, level: "warning" }))];
  const perNode = new Map();
  for (const err of all) {
    const path = err.path || "";
    let target = path ? targetFor(path) : null;
    // A node-level error: attach to the node's header area.
    if (target && (target.classList.contains("node") || target.classList.contains("flow-settings"))) target = target.querySelector(".node-head");
    if (!target || target === formView) {
      general.push(err);
      continue;
    }
    const folded = target.closest("details.advanced");
    if (folded && err.level === "error") folded.open = true;
    const nodeEl = target.closest(".node, .flow-settings");
    if (nodeEl && err.level === "error") perNode.set(nodeEl, (perNode.get(nodeEl) || 0) + 1);
    const msg = h(
      "p",
      { class: `field-error remote ${err.level}`, role: err.level === "error" ? "alert" : null },
      err.message || "Invalid",
      err.hint ? h("span", { class: "hint" }, ` ${err.hint}`) : null,
    );
    if (target.classList.contains("node-head")) target.after(msg);
    else target.append(msg);
    const control = target.querySelector(":scope > .request-row > input") || target.querySelector("input, select, textarea");
    if (control && err.level === "error") {
      control.setAttribute("aria-invalid", "true");
      control.classList.add("remote-invalid");
    }
  }
  for (const [nodeEl, n] of perNode) {
    const badge = nodeEl.querySelector(".node-errors");
    if (badge) badge.textContent = `${n} problem${n > 1 ? "s" : ""}`;
  }
  if (general.length) {
    generalErrors.hidden = false;
    generalErrors.append(
      h(
        "ul",
        null,
        general.map((e) => h("li", { class: e.level }, e.path ? h("code", null, e.path) : null, " ", e.message || "", e.hint ? ` — ${e.hint}` : "")),
      ),
    );
  }
  if (!errors.length) {
    validity.textContent = warnings.length ? `Valid · ${warnings.length} warning${warnings.length > 1 ? "s" : ""}` : "Valid";
    validity.className = "validity ok";
  } else {
    validity.textContent = `${errors.length} problem${errors.length > 1 ? "s" : ""}`;
    validity.className = "validity bad";
  }
}

// ---- wiring ----------------------------------------------------------------------

export function resetExpanded(doc) {
  const n = (doc && doc.nodes && doc.nodes.length) || 0;
  expanded = new Set(n <= 3 ? [...Array(n).keys()] : [0]);
}

on("doc", ({ source }) => {
  if (source === "load") resetExpanded(state.doc);
  if (source !== "form") renderForm();
  if (source !== "json") syncJson();
  validateSoon();
});

attachAutocomplete(formView);
