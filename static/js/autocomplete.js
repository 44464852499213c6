// `{{` autocomplete for placeholders: variables, inputs, earlier node ids with the
// fields seen in their last responses, and the dynamic values.

import { h } from "./dom.js";
import { store } from "./state.js";

const DYNAMIC = ["$guid", "$timestamp", "$isoTimestamp", "$randomInt"];
const MAX_ITEMS = 12;

function fieldsOf(value, prefix = "", depth = 0, out = []) {
  if (depth > 2 || out.length > 40 || value === null || typeof value !== "object") return out;
  if (Array.isArray(value)) {
    if (value.length) {
      out.push(`${prefix}[0]`);
      fieldsOf(value[0], `${prefix}[0]`, depth + 1, out);
    }
    out.push(`${prefix} | length`);
    return out;
  }
  for (const [k, v] of Object.entries(value)) {
    if (!/^[A-Za-z0-9_-]+$/.test(k)) continue;
    out.push(`${prefix}.${k}`);
    fieldsOf(v, `${prefix}.${k}`, depth + 1, out);
  }
  return out;
}

// Suggestions for a field inside node `index` (or flow-level when index < 0).
export function suggestions(index) {
  const { flow, known } = store.get();
  const doc = flow || {};
  const nodes = Array.isArray(doc.nodes) ? doc.nodes : [];
  const upto = index < 0 ? 0 : index;
  const items = [];
  for (const name of Object.keys(doc.variables || {})) items.push({ text: `.vars.${name}`, kind: "variable" });
  const inputs = new Set();
  nodes.slice(0, index < 0 ? 0 : index + 1).forEach((n) => Object.keys((n && n.userPrompts) || {}).forEach((k) => inputs.add(k)));
  for (const k of inputs) items.push({ text: `.input.${k}`, kind: "input" });
  for (const n of nodes.slice(0, upto)) {
    if (!n || !n.id) continue;
    items.push({ text: `.responses.${n.id}`, kind: "response" });
    for (const f of fieldsOf(known[n.id] && known[n.id].body)) items.push({ text: `.responses.${n.id}${f}`, kind: "response" });
    items.push({ text: `.status.${n.id}`, kind: "status" });
    const headers = Object.keys((known[n.id] && known[n.id].headers) || {});
    for (const name of headers.length ? headers : ["Content-Type"]) items.push({ text: `.headers.${n.id}.${name}`, kind: "header" });
  }
  for (const d of DYNAMIC) items.push({ text: d, kind: "dynamic" });
  return items;
}

let box = null;
let active = -1;
let shown = [];
let owner = null;
let openAt = -1;

function close() {
  if (box) box.hidden = true;
  if (owner) {
    owner.setAttribute("aria-expanded", "false");
    owner.removeAttribute("aria-activedescendant");
  }
  owner = null;
  shown = [];
  active = -1;
}

function ensureBox() {
  if (box) return box;
  box = h("ul", { class: "ac-box", role: "listbox", id: "ac-box", hidden: true, "aria-label": "Placeholder suggestions" });
  box.addEventListener("mousedown", (e) => e.preventDefault());
  document.body.append(box);
  return box;
}

function render() {
  ensureBox();
  box.replaceChildren(
    ...shown.map((item, i) =>
      h(
        "li",
        {
          id: `ac-${i}`,
          role: "option",
          "aria-selected": String(i === active),
          class: i === active ? "active" : "",
          onclick: () => accept(i),
        },
        h("span", { class: `ac-kind sub-${item.kind}` }, item.kind),
        h("code", null, item.text),
      ),
    ),
  );
  if (owner && active >= 0) {
    owner.setAttribute("aria-activedescendant", `ac-${active}`);
    box.children[active]?.scrollIntoView({ block: "nearest" });
  }
}

// Below the field, or above it when the field sits low in the window (a box
// cut off by the window's bottom edge hid most suggestions).
function position(el) {
  const r = el.getBoundingClientRect();
  box.style.left = `${Math.max(4, r.left)}px`;
  box.style.minWidth = `${Math.min(Math.max(r.width, 260), 460)}px`;
  const below = window.innerHeight - r.bottom - 12;
  const above = r.top - 12;
  box.style.maxHeight = "";
  const wanted = box.offsetHeight;
  const up = wanted > below && above > below;
  box.style.maxHeight = `${Math.max(80, Math.min(280, up ? above : below))}px`;
  box.style.top = `${up ? Math.max(4, r.top - 4 - box.offsetHeight) : r.bottom + 4}px`;
}

function update(el) {
  const caret = el.selectionStart ?? el.value.length;
  const before = el.value.slice(0, caret);
  const m = before.match(/(?<!\\)\{\{\s*([^{}]*)$/); // `\{{` is text, not a placeholder
  if (!m) return close();
  const query = m[1].trim().toLowerCase();
  const nodeEl = el.closest(".node");
  const index = nodeEl ? Number(nodeEl.dataset.index) : -1;
  const all = suggestions(index);
  const starts = all.filter((s) => s.text.toLowerCase().startsWith(query));
  const contains = all.filter((s) => !starts.includes(s) && s.text.toLowerCase().includes(query));
  shown = [...starts, ...contains].slice(0, MAX_ITEMS);
  if (!shown.length) return close();
  owner = el;
  openAt = caret - m[0].length;
  active = 0;
  el.setAttribute("aria-expanded", "true");
  el.setAttribute("aria-controls", "ac-box");
  el.setAttribute("aria-autocomplete", "list");
  render();
  box.hidden = false;
  position(el);
}

function accept(i) {
  const el = owner;
  const item = shown[i];
  if (!el || !item) return;
  const caret = el.selectionStart ?? el.value.length;
  const after = el.value.slice(caret);
  const closing = /^\s*\}\}/.test(after) ? "" : " }}";
  const insert = `{{ ${item.text}${closing}`;
  el.value = el.value.slice(0, openAt) + insert + after;
  const pos = openAt + insert.length;
  el.setSelectionRange(pos, pos);
  close();
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.focus();
}

export function attachAutocomplete(root) {
  root.addEventListener("input", (e) => {
    const el = e.target;
    if (!el.classList || !el.classList.contains("ph-input")) return;
    if (owner && owner !== el) close();
    update(el);
  });
  root.addEventListener("keydown", (e) => {
    if (!owner || e.target !== owner || box.hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = shown.length;
      active = (active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      render();
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      accept(active);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  root.addEventListener("focusout", () => setTimeout(() => {
    if (owner && document.activeElement !== owner) close();
  }, 0));
  window.addEventListener("resize", close);
  // Follow the field when the form scrolls, rather than closing under the cursor.
  root.addEventListener("scroll", () => {
    if (owner && box && !box.hidden) position(owner);
  }, true);
}
