// Try it out: run one node alone through /api/execute-node, with values for the
// earlier responses and inputs it refers to.

import { api, SECRET_KEY } from "./api.js";
import { stepCard } from "./cards.js";
import { $, clear, h } from "./dom.js";
import { setKnown, store } from "./state.js";

const dialog = $("#try-dialog");
const form = $("#try-form");
const fields = $("#try-fields");
const intro = $("#try-intro");
const result = $("#try-result");
// A placeholder (group 1: its expression), or an escaped `\{{`, which is text.
const PH = /\\\{\{(?:(?:(?!\{\{).)*?\}\})?|\{\{\s*([^{}]+?)\s*\}\}/g;

function refs(value, out = []) {
  if (typeof value === "string") {
    for (const m of value.matchAll(PH)) if (m[1] !== undefined) out.push(m[1].trim());
  } else if (Array.isArray(value)) value.forEach((v) => refs(v, out));
  else if (value && typeof value === "object") Object.values(value).forEach((v) => refs(v, out));
  return out;
}

// Build a skeleton body holding every path used, e.g. .user.id -> {"user": {"id": ""}}.
function skeleton(paths) {
  const root = {};
  for (const path of paths) {
    const keys = path.replace(/\|.*$/, "").trim().split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== "");
    let cur = root;
    keys.forEach((k, i) => {
      const last = i === keys.length - 1;
      const nextIsIndex = !last && /^\d+$/.test(keys[i + 1]);
      if (last) cur[k] = cur[k] ?? "";
      else {
        if (!cur[k] || typeof cur[k] !== "object") cur[k] = nextIsIndex ? [] : {};
        cur = cur[k];
      }
    });
  }
  return root;
}

let nodeIndex = -1;

export function openTryIt(index) {
  const doc = store.get().flow;
  const node = doc.nodes[index];
  nodeIndex = index;
  clear(fields);
  clear(result);
  const d = doc.defaults || {};
  const used = refs([node.url, node.headers, node.body, node.validations || d.validations, node.conditions, d.baseUrl, d.headers]);
  const responses = new Map();
  const inputs = new Set(Object.keys(node.userPrompts || {}));
  for (const r of used) {
    let m = r.match(/^\.(?:responses|headers|status)\.([A-Za-z0-9_-]+)(.*)$/);
    if (m && r.startsWith(".responses.")) {
      if (!responses.has(m[1])) responses.set(m[1], []);
      responses.get(m[1]).push(m[2]);
    } else if (m) {
      if (!responses.has(m[1])) responses.set(m[1], []);
    } else if ((m = r.match(/^\.input\.([A-Za-z0-9_-]+)/))) inputs.add(m[1]);
  }
  $("#try-title").textContent = `Try it out: ${node.name || node.id}`;
  intro.textContent = responses.size || inputs.size
    ? "This step uses values from earlier steps. Give them here (prefilled from the last run when known)."
    : "This step needs nothing from earlier steps.";
  for (const [id, paths] of responses) {
    const known = (store.get().known[id] || {}).body;
    const ta = h("textarea", { id: `try-resp-${id}`, rows: 4, class: "code-input", spellcheck: "false", dataset: { node: id } });
    ta.value = JSON.stringify(known ?? skeleton(paths), null, 2);
    fields.append(h("div", { class: "field" }, h("label", { for: ta.id }, `Response body of ${id}`), ta));
  }
  for (const key of inputs) {
    const input = h("input", { id: `try-input-${key}`, type: SECRET_KEY.test(key) ? "password" : "text", dataset: { input: key }, autocomplete: "off" });
    fields.append(h("div", { class: "field" }, h("label", { for: input.id }, `Input ${key}`), input));
  }
  dialog.showModal();
  (fields.querySelector("textarea, input") || form.querySelector("button[type=submit]")).focus();
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const doc = store.get().flow;
  const node = doc.nodes[nodeIndex];
  const mockResponses = {};
  const inputs = {};
  clear(result);
  for (const ta of fields.querySelectorAll("textarea[data-node]")) {
    try {
      mockResponses[ta.dataset.node] = JSON.parse(ta.value || "null");
    } catch (err) {
      result.append(h("p", { class: "card-error" }, `Response body of ${ta.dataset.node} is not valid JSON: ${err.message}`));
      return;
    }
  }
  for (const input of fields.querySelectorAll("input[data-input]")) inputs[input.dataset.input] = input.value;
  result.append(h("p", { class: "muted" }, "Sending…"));
  try {
    // The environment chosen for runs applies to Try it out as well.
    const env = store.get().env;
    const options = env.available && env.selected ? { environment: env.selected } : undefined;
    const res = await api.executeNode({ config: doc, nodeId: node.id, mockResponses, inputs, options });
    // The answer is the step record itself (tolerate a {"step"/"record": …} wrapper).
    const found = ["step", "record"].map((k) => res && res[k]).find((v) => v && typeof v === "object") || res;
    // The node ran alone, so the server numbers it 1: show its place in the flow.
    const rec = { ...found, step: nodeIndex + 1, stepIndex: nodeIndex };
    clear(result);
    result.append(stepCard(rec));
    if (rec.response && rec.response.body !== undefined) setKnown(node.id, rec.response.body, rec.response.headers);
  } catch (err) {
    clear(result);
    result.append(h("p", { class: "card-error" }, `Try it out failed: ${err.message}`));
    for (const x of err.errors || []) result.append(h("p", { class: "card-error" }, `${x.path}: ${x.message}`));
  }
});

$("#try-close").addEventListener("click", () => dialog.close());
