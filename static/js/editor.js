// The form view: flow settings and one card per step, drawn from the store and
// updated in place. Cards are kept by the step's key (not its position), and a
// card's fields are built the first time it is opened.

import { checksField } from "./builders.js";
import { $, $$, clear, h, icon, toast } from "./dom.js";
import { asNames, asNumber, asText, checkField, kvField, selectField, textField, updateAll } from "./fields.js";
import { insertAt, moveItem, removeAt, store } from "./state.js";
import { getIn } from "./store.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const BODY_FORMATS = [
  ["", "JSON (default)"],
  ["form-urlencoded", "Form (URL-encoded)"],
  ["text", "Text, sent as written"],
];

let tryItOut = () => {};
export function onTryItOut(fn) {
  tryItOut = fn;
}

function setExpanded(key, open) {
  store.update("ui", (ui) => {
    const expanded = new Set(ui.expanded);
    if (open) expanded.add(key);
    else expanded.delete(key);
    return { ...ui, expanded };
  });
}

// ---- flow settings ---------------------------------------------------------------

function flowSettings() {
  const at = (p) => () => p;
  const parts = [
    textField("Flow name", at("name")),
    textField("Base URL", at("defaults.baseUrl"), { ph: true, placeholder: "https://api.example.com" }),
    textField("Default timeout (s)", at("defaults.timeout"), { codec: asNumber, type: "number", placeholder: "30" }),
    textField("Description", at("description"), { wide: true, multiline: true, rows: 2 }),
    selectField("Default body format", at("defaults.bodyFormat"), BODY_FORMATS),
    textField("Default retry count", at("defaults.retry.count"), { codec: asNumber, type: "number", placeholder: "0" }),
    textField("Default retry interval (ms)", at("defaults.retry.intervalMs"), { codec: asNumber, type: "number", placeholder: "500" }),
    kvField("Variables", at("variables"), { addLabel: "Variable", ph: false }),
    textField("Secret variables", at("secrets"), {
      codec: asNames,
      wide: true,
      placeholder: "password, apiKey",
      hint: "Their values show as •••• in runs and History; one with no value here must come from the environment.",
    }),
    kvField("Default headers", at("defaults.headers"), { addLabel: "Header" }),
    checksField("Default checks", at("defaults.validations"), { hint: "Used by every step that has no checks of its own." }),
  ];
  const body = h("div", { class: "node-body grid grid-3", id: "flow-settings-body", hidden: true }, parts.map((p) => p.el));
  const summary = h("span", { class: "flow-summary muted" });
  const toggle = h(
    "button",
    { type: "button", class: "node-toggle", "aria-expanded": "false", "aria-controls": "flow-settings-body" },
    h("span", { class: "chev", "aria-hidden": "true" }, "▸"),
    h("span", { class: "node-name" }, "Flow settings"),
    summary,
  );
  toggle.addEventListener("click", () => store.update("ui", (ui) => ({ ...ui, settingsOpen: !ui.settingsOpen })));
  const el = h(
    "section",
    { class: "panel flow-settings", dataset: { path: "" }, "aria-label": "Flow settings" },
    h("div", { class: "node-head" }, toggle, h("span", { class: "node-errors", "aria-live": "polite" })),
    body,
  );
  return {
    el,
    update(s) {
      const open = s.ui.settingsOpen;
      el.classList.toggle("open", open);
      toggle.setAttribute("aria-expanded", String(open));
      body.hidden = !open;
      const doc = s.flow || {};
      const vars = Object.keys(doc.variables || {}).length;
      summary.textContent = [getIn(doc, "defaults.baseUrl") || "no base URL", `${vars} variable${vars === 1 ? "" : "s"}`].join(" · ");
      updateAll(parts, s);
    },
  };
}

// ---- the body: fields, or JSON / text -----------------------------------------------

const flat = (v) => v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x !== "object");

// A flat object body (a login form, say) is edited as name/value rows; any other
// body, text bodies and bodies being typed as JSON are a text box. "Edit as JSON"
// switches, and back when the body is flat again.
function bodyEditor(P, getState, format) {
  const fmt = () => getIn(getState().flow, P("bodyFormat")());
  const codec = {
    parse: (t) => {
      if (fmt() === "text") return t === "" ? undefined : t;
      if (t.trim() === "") return undefined;
      try {
        return JSON.parse(t);
      } catch (e) {
        throw new Error(`Not valid JSON: ${e.message}`);
      }
    },
    format: (v) => (v === undefined ? "" : fmt() === "text" && typeof v === "string" ? v : JSON.stringify(v, null, 2)),
  };
  const rows = kvField("Body fields", P("body"), { keyLabel: "Field", valueLabel: "Value", addLabel: "Field" });
  const text = textField("Body", P("body"), { codec, multiline: true, rows: 2, ph: true, wide: true, placeholder: '{"key": "{{ .vars.name }}"}' });
  let chosen = null; // "json" once the person asks for the text box
  const toggle = h("button", { type: "button", class: "btn small ghost" });
  toggle.addEventListener("click", () => {
    chosen = mode() === "fields" ? "json" : "fields";
    draw(getState());
    (chosen === "json" ? text.control : rows.el.querySelector("input, button")).focus();
  });
  format.el.classList.add("body-format");
  const el = h("div", { class: "field wide body-field" }, h("div", { class: "kv-head" }, h("span", { class: "field-label" }, "Body"), format.el, toggle), rows.el, text.el);
  rows.el.classList.add("bare");
  text.el.querySelector("label").classList.add("visually-hidden");
  function mode() {
    const s = getState();
    const p = P("body")();
    const draft = s.drafts[p];
    if (draft) return Array.isArray(draft.raw) ? "fields" : "json";
    const body = getIn(s.flow, p);
    const fits = body === undefined || flat(body);
    if (!fits || fmt() === "text") return "json";
    return chosen || "fields";
  }
  function draw(s) {
    const m = mode();
    const body = getIn(s.flow, P("body")());
    rows.el.hidden = m !== "fields";
    text.el.hidden = m !== "json";
    const canFields = (body === undefined || flat(body)) && fmt() !== "text" && !s.drafts[P("body")()];
    toggle.hidden = m === "json" && !canFields;
    toggle.textContent = m === "fields" ? "Edit as JSON" : "Edit as fields";
    if (m === "fields") rows.update(s);
    else text.update(s);
  }
  return {
    el,
    update(s) {
      format.update(s);
      draw(s);
    },
  };
}

// ---- one step ----------------------------------------------------------------------

function tool(title, content, onclick, extra = "") {
  return h("button", { type: "button", class: `btn icon ghost small ${extra}`, title, onclick }, content);
}

function deleteStep(index) {
  const s = store.get();
  const node = (s.flow.nodes || [])[index] || {};
  const who = node.name || node.id || `step ${index + 1}`;
  removeAt("nodes", index, `delete step ${who}`);
  toast(`Deleted “${who}”.`, "info", { label: "Undo", run: () => store.undo() });
  // Focus goes to the next step's title (never to a delete button by itself).
  const next = $$(".nodes > .node .node-toggle")[Math.min(index, (store.get().flow.nodes || []).length - 1)];
  (next || $("#btn-add-step"))?.focus();
}

function duplicateStep(index) {
  const nodes = store.get().flow.nodes || [];
  const copy = structuredClone(nodes[index]);
  copy.id = newId(nodes, copy.id);
  copy.name = `${copy.name || copy.id} (copy)`;
  insertAt("nodes", index + 1, copy, "duplicate step");
  setExpanded(store.get().keys[index + 1], true);
}

function newId(nodes, base = "step") {
  const ids = new Set(nodes.map((n) => n && n.id));
  const stem = String(base).replace(/\d+$/, "") || "step";
  let n = 2;
  while (ids.has(`${stem}${n}`)) n += 1;
  return `${stem}${n}`;
}

function addStep() {
  const nodes = store.get().flow.nodes || [];
  const id = newId(nodes);
  insertAt("nodes", nodes.length, { id, name: `Step ${nodes.length + 1}`, method: "GET", url: "/items" }, "add step");
  const key = store.get().keys[nodes.length];
  setExpanded(key, true);
  $(`.node[data-key="${key}"] input`)?.focus();
}

function nodeCard(key) {
  let index = 0;
  let state = null;
  const P = (rel) => () => `nodes[${index}]${rel ? `.${rel}` : ""}`;
  const el = h("section", { class: "panel node", dataset: { key } });
  const methodBadge = h("span", { class: "method" });
  const stepNo = h("span", { class: "step-no" });
  const titleName = h("span", { class: "node-name" });
  const titleId = h("span", { class: "node-id" });
  const titleUrl = h("span", { class: "node-url" });
  const bodyId = `node-body-${key}`;
  const toggle = h(
    "button",
    { type: "button", class: "node-toggle", "aria-controls": bodyId },
    h("span", { class: "chev", "aria-hidden": "true" }, "▸"),
    stepNo,
    methodBadge,
    h("span", { class: "node-titles" }, titleName, titleId),
    titleUrl,
  );
  toggle.addEventListener("click", () => setExpanded(key, !store.get().ui.expanded.has(key)));
  const handle = h("span", { class: "drag-handle", title: "Drag to reorder", "aria-hidden": "true" }, "⋮⋮");
  const tryBtn = h("button", { type: "button", class: "btn small ghost try-btn", onclick: () => tryItOut(index) }, "Try it out");
  const up = tool("Move up", "↑", () => moveTo(index - 1));
  const down = tool("Move down", "↓", () => moveTo(index + 1));
  const dup = tool("Duplicate", icon("copy"), () => duplicateStep(index));
  const del = tool("Delete (Ctrl+Z undoes)", icon("trash"), () => deleteStep(index), "danger");
  const badge = h("span", { class: "node-errors", "aria-live": "polite" });
  el.append(h("div", { class: "node-head" }, handle, toggle, badge, h("div", { class: "node-tools" }, tryBtn, up, down, dup, del)));
  const body = h("div", { class: "node-body grid", id: bodyId, hidden: true });
  el.append(body);
  let parts = null;
  let advanced = null;

  function moveTo(to) {
    const count = (store.get().flow.nodes || []).length;
    if (to < 0 || to >= count) return;
    moveItem("nodes", index, to, "move step");
    // The same card (kept by key) now sits at `to`: the button keeps focus there.
  }

  function build() {
    const method = selectField("Method", P("method"), METHODS.map((m) => [m, m]), { fallback: "GET" });
    const url = textField("URL", P("url"), { ph: true, placeholder: "/path or https://…" });
    const request = h("div", { class: "field wide request-line" }, h("div", { class: "request-row" }, method.el, url.el));
    const conditions = checksField("Conditions", P("conditions"), { kind: "condition", nodeIndex: () => index, hint: "The step runs only if all of them hold; otherwise it is skipped." });
    const more = [
      conditions,
      textField("Retry count", P("retry.count"), { codec: asNumber, type: "number", placeholder: "0" }),
      textField("Retry interval (ms)", P("retry.intervalMs"), { codec: asNumber, type: "number", placeholder: "500" }),
      textField("Delay (ms)", P("delayMs"), { codec: asNumber, type: "number", placeholder: "0" }),
      textField("Timeout (s)", P("timeout"), { codec: asNumber, type: "number", placeholder: "30" }),
      textField("Open in browser (response path)", P("launchBrowser"), { placeholder: ".authorizeUrl", codec: asText }),
      checkField("Do not add the flow's default headers", P("skipDefaultHeaders")),
    ];
    advanced = h(
      "details",
      { class: "field wide advanced" },
      h("summary", null, "More options", h("span", { class: "muted small adv-used" })),
      h("div", { class: "grid" }, more.map((p) => p.el)),
    );
    parts = [
      textField("Name", P("name")),
      textField("ID", P("id"), { hint: "letters, digits, _ and -" }),
      textField("Description", P("description"), { wide: true, multiline: true, rows: 1 }),
      method,
      url,
      kvField("Headers", P("headers"), { addLabel: "Header" }),
      bodyEditor(P, () => state, selectField("Body format", P("bodyFormat"), BODY_FORMATS)),
      kvField("Prompts", P("userPrompts"), { keyLabel: "Key", valueLabel: "Question", addLabel: "Prompt" }),
      checksField("Checks", P("validations"), { nodeIndex: () => index }),
      checkField("Do not fall back to the flow's default checks", P("skipDefaultValidations"), { hint: "With no checks of its own, the step then checks nothing." }),
      ...more,
    ];
    const [name, id, description, , , headers, bodyField, prompts, checks, skipChecks] = parts;
    body.append(name.el, id.el, description.el, request, headers.el, bodyField.el, prompts.el, checks.el, skipChecks.el, advanced);
    method.el.classList.add("method-wrap");
  }

  // Drag to reorder (the ↑/↓ buttons do the same from the keyboard).
  handle.draggable = true;
  handle.addEventListener("dragstart", (e) => {
    e.dataTransfer.setData("text/x-flowrun-node", String(index));
    e.dataTransfer.effectAllowed = "move";
    el.classList.add("dragging");
  });
  handle.addEventListener("dragend", () => el.classList.remove("dragging"));
  el.addEventListener("dragover", (e) => {
    if (!e.dataTransfer.types.includes("text/x-flowrun-node")) return;
    e.preventDefault();
    el.classList.add("drop-target");
  });
  el.addEventListener("dragleave", () => el.classList.remove("drop-target"));
  el.addEventListener("drop", (e) => {
    e.preventDefault();
    el.classList.remove("drop-target");
    const from = Number(e.dataTransfer.getData("text/x-flowrun-node"));
    if (!Number.isNaN(from) && from !== index) moveItem("nodes", from, index, "move step");
  });

  return {
    el,
    key,
    seen: null,
    update(s, i, count) {
      state = s;
      index = i;
      const node = (s.flow.nodes || [])[i] || {};
      const open = s.ui.expanded.has(key);
      el.dataset.index = String(i);
      el.dataset.path = `nodes[${i}]`;
      el.classList.toggle("open", open);
      el.setAttribute("aria-label", `Step ${i + 1}: ${node.name || node.id || ""}`);
      const m = String(node.method || "GET").toUpperCase();
      methodBadge.textContent = m;
      methodBadge.className = `method m-${m}`;
      stepNo.textContent = `#${i + 1}`;
      titleName.textContent = node.name || "(unnamed)";
      titleId.textContent = node.id || "";
      titleUrl.textContent = node.url || "";
      toggle.setAttribute("aria-expanded", String(open));
      up.disabled = i === 0;
      down.disabled = i === count - 1;
      up.setAttribute("aria-label", `Move step ${i + 1} up`);
      down.setAttribute("aria-label", `Move step ${i + 1} down`);
      dup.setAttribute("aria-label", `Duplicate step ${i + 1}`);
      del.setAttribute("aria-label", `Delete step ${i + 1}`);
      body.hidden = !open;
      if (open && !parts) build();
      if (parts) {
        updateAll(parts, s);
        const used = ["conditions", "retry", "delayMs", "timeout", "launchBrowser", "skipDefaultHeaders"].filter((k) => node[k] !== undefined);
        advanced.querySelector(".adv-used").textContent = used.length ? ` · ${used.join(", ")}` : " · conditions, retry, delay, timeout, open in browser";
        if (advanced.dataset.init !== "1") {
          advanced.dataset.init = "1";
          advanced.open = used.length > 0;
        }
      }
    },
  };
}

// ---- the whole form -------------------------------------------------------------------

function draftsUnder(s, prefix) {
  let out = "";
  for (const [p, d] of Object.entries(s.drafts)) {
    if (p.startsWith(prefix) && (p.length === prefix.length || p[prefix.length] === "." || p[prefix.length] === "[")) {
      out += `${p}\u0000${JSON.stringify(d)}\u0000`;
    }
  }
  return out;
}

export function mountForm(root, { onErrors } = {}) {
  const blocked = h(
    "div",
    { class: "form-blocked", role: "alert", hidden: true },
    h("p", null, "The JSON view holds text that does not parse yet. The form shows the last valid flow and waits until the JSON parses."),
    h("div", { class: "banner-actions" }, h("button", { type: "button", class: "btn small primary", dataset: { goto: "json" } }, "Show the JSON")),
  );
  const settings = flowSettings();
  const list = h("div", { class: "nodes" });
  const heading = h("h2", { class: "panel-title" });
  const add = h("button", { type: "button", class: "btn add-node", id: "btn-add-step", onclick: addStep }, "+ Add step");
  const content = h(
    "div",
    { class: "form-content" },
    settings.el,
    h("div", { class: "nodes-head" }, heading, h("span", { class: "muted small" }, "Type {{ in a URL, header, body or prompt for suggestions.")),
    list,
    add,
  );
  clear(root);
  root.append(blocked, content);
  const cards = new Map();

  function update(s) {
    if (!s.flow || typeof s.flow !== "object" || Array.isArray(s.flow)) return;
    const rootDraft = Boolean(s.drafts[""]);
    blocked.hidden = !rootDraft;
    content.inert = rootDraft;
    content.classList.toggle("is-blocked", rootDraft);
    settings.update(s);
    const nodes = Array.isArray(s.flow.nodes) ? s.flow.nodes : [];
    heading.textContent = `Steps (${nodes.length})`;
    const keep = new Set();
    s.keys.forEach((key, i) => {
      keep.add(key);
      let card = cards.get(key);
      if (!card) {
        card = nodeCard(key);
        cards.set(key, card);
      }
      // A folded card whose step and place are unchanged is left alone (an open one
      // also shows things from elsewhere: earlier steps' ids, known responses).
      const open = s.ui.expanded.has(key);
      const seen = [nodes[i], i, nodes.length, open, draftsUnder(s, `nodes[${i}]`)];
      if (!open && card.seen && card.seen.every((v, n) => v === seen[n])) return;
      card.seen = seen;
      card.update(s, i, nodes.length);
    });
    for (const [key, card] of cards) {
      if (!keep.has(key)) {
        card.el.remove();
        cards.delete(key);
      }
    }
    let before = list.firstChild;
    for (const key of s.keys) {
      const el = cards.get(key).el;
      if (el !== before) list.insertBefore(el, before);
      before = el.nextSibling;
    }
    if (onErrors) onErrors();
  }

  store.subscribe((s, prev) => {
    if (s.flow !== prev.flow || s.drafts !== prev.drafts || s.keys !== prev.keys || s.ui !== prev.ui || s.known !== prev.known) update(s);
  });
  root.addEventListener("click", (e) => {
    if (e.target.closest("[data-goto=json]")) document.dispatchEvent(new CustomEvent("flowrun:view", { detail: "json" }));
  });
  update(store.get());
}

// Open the step (or settings) that holds `path`, and focus its control.
export function reveal(path) {
  const m = /^nodes\[(\d+)\]/.exec(path);
  const s = store.get();
  if (m) {
    const key = s.keys[Number(m[1])];
    if (key && !s.ui.expanded.has(key)) setExpanded(key, true);
  } else if (path && !s.ui.settingsOpen) {
    store.update("ui", (ui) => ({ ...ui, settingsOpen: true }));
  }
  let best = null;
  for (const el of $$("#form-view [data-path]")) {
    const p = el.dataset.path;
    if (p && (path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) && (!best || p.length >= best.dataset.path.length)) best = el;
  }
  if (!best) return false;
  best.closest("details.advanced")?.setAttribute("open", "");
  const control = best.matches("input, select, textarea") ? best : best.querySelector("[aria-invalid=true]") || best.querySelector("input, select, textarea");
  best.scrollIntoView({ block: "center" });
  control?.focus();
  return true;
}
