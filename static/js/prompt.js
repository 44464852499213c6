// The prompt of a waiting step: one field per question, every one required;
// answers that are not secret are remembered for the next run of the same flow
// (Flow once again), secret ones never.

import { SECRET_KEY } from "./api.js";
import { $, clear, h } from "./dom.js";

const dialog = $("#prompt-dialog");
const form = $("#prompt-form");
const fields = $("#prompt-fields");
const sub = $("#prompt-sub");
const error = $("#prompt-error");
const remembered = new Map(); // `${flow}\0${key}` -> answer

let current = null; // {ev, onSubmit, onCancel}

export const promptOpen = () => dialog.open;
export const promptEvent = () => (current ? current.ev : null);

// ev: the input_required event; order: the flow's own order of the keys.
export function openPrompt(ev, { flow = "", order = [], onSubmit, onCancel }) {
  current = { ev, flow, onSubmit, onCancel };
  clear(fields);
  error.hidden = true;
  sub.textContent = `Step #${ev.step}: ${ev.name || ""}`;
  const entries = Object.entries(ev.prompts || {}).sort(([a], [b]) => (order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9));
  for (const [key, text] of entries) {
    const id = `prompt-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const secret = SECRET_KEY.test(key);
    const input = h("input", { id, name: key, type: secret ? "password" : "text", autocomplete: "off", spellcheck: "false", required: true, "aria-required": "true" });
    if (!secret && remembered.has(`${flow}\u0000${key}`)) input.value = remembered.get(`${flow}\u0000${key}`);
    fields.append(h("div", { class: "field" }, h("label", { for: id }, String(text || key)), input, h("span", { class: "field-hint" }, secret ? `${key} · secret: not kept` : key)));
  }
  if (!dialog.open) dialog.showModal();
  const first = [...fields.querySelectorAll("input")].find((i) => !i.value) || fields.querySelector("input");
  first?.focus();
}

export function closePrompt() {
  current = null;
  if (dialog.open) dialog.close();
}

export function showPromptError(message) {
  error.textContent = message;
  error.hidden = false;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!current) return;
  const inputs = [...fields.querySelectorAll("input")];
  const empty = inputs.filter((i) => i.value === "");
  for (const i of inputs) {
    if (i.value === "") i.setAttribute("aria-invalid", "true");
    else i.removeAttribute("aria-invalid");
  }
  if (empty.length) {
    showPromptError(empty.length === 1 ? `${empty[0].labels[0].textContent} needs an answer.` : "Every question needs an answer.");
    empty[0].focus();
    return;
  }
  error.hidden = true;
  const values = {};
  for (const input of inputs) {
    values[input.name] = input.value;
    if (!SECRET_KEY.test(input.name)) remembered.set(`${current.flow}\u0000${input.name}`, input.value);
  }
  current.onSubmit(values, current.ev);
});

function cancel(e) {
  e?.preventDefault();
  const was = current;
  closePrompt();
  if (was && was.onCancel) was.onCancel(was.ev);
}

$("#prompt-cancel").addEventListener("click", cancel);
dialog.addEventListener("cancel", cancel);
