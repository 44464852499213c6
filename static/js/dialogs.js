// Small in-page dialogs (no window.prompt/confirm): ask for text, or confirm.

import { $, clear, h } from "./dom.js";

const dialog = $("#ask-dialog");
const form = $("#ask-form");
const title = $("#ask-title");
const text = $("#ask-text");
const body = $("#ask-body");
const error = $("#ask-error");
const ok = $("#ask-ok");

// Resolve with the entered value (or true for a confirmation), null when cancelled.
export function ask({ heading, message = "", label, value = "", okLabel = "OK", multiline = false, validate, danger = false }) {
  return new Promise((resolve) => {
    title.textContent = heading;
    text.textContent = message;
    clear(body);
    error.hidden = true;
    ok.textContent = okLabel;
    ok.className = `btn ${danger ? "danger-solid" : "primary"}`;
    let input = null;
    if (label) {
      input = multiline ? h("textarea", { id: "ask-input", rows: 6, spellcheck: "false", class: "code-input" }) : h("input", { id: "ask-input", type: "text", spellcheck: "false", autocomplete: "off" });
      input.value = value;
      body.append(h("div", { class: "field" }, h("label", { for: "ask-input" }, label), input));
    }
    const done = (result) => {
      form.removeEventListener("submit", onSubmit);
      cancelBtn.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve(result);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const result = input ? input.value : true;
      const problem = validate ? validate(result) : null;
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        return;
      }
      done(result);
    };
    const onCancel = (e) => {
      e?.preventDefault();
      done(null);
    };
    const cancelBtn = $("#ask-cancel");
    form.addEventListener("submit", onSubmit);
    cancelBtn.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    (input || ok).focus();
    if (input && !multiline) input.select();
  });
}
