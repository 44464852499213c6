// Small in-page dialogs (no window.prompt/confirm): ask for text, or confirm.

import { $, append, clear, h } from "./dom.js";

const dialog = $("#ask-dialog");
const form = $("#ask-form");
const title = $("#ask-title");
const text = $("#ask-text");
const body = $("#ask-body");
const error = $("#ask-error");
const ok = $("#ask-ok");

// Resolve with the entered value (or true for a confirmation), null when cancelled.
// `validate(value)` returns a problem to show (or a promise of one): the dialog stays
// open with what was typed. `content` is shown under the message (a preview).
export function ask({ heading, message = "", label, value = "", okLabel = "OK", multiline = false, validate, danger = false, content = null, wide = false }) {
  return new Promise((resolve) => {
    title.textContent = heading;
    text.textContent = message;
    text.hidden = !message;
    clear(body);
    error.hidden = true;
    ok.textContent = okLabel;
    ok.disabled = false;
    ok.className = `btn ${danger ? "danger-solid" : "primary"}`;
    dialog.classList.toggle("wide", wide);
    if (content) append(body, [content]);
    let input = null;
    if (label) {
      input = multiline ? h("textarea", { id: "ask-input", rows: 6, spellcheck: "false", class: "code-input" }) : h("input", { id: "ask-input", type: "text", spellcheck: "false", autocomplete: "off" });
      input.value = value;
      body.append(h("div", { class: "field" }, h("label", { for: "ask-input" }, label), input));
    }
    let busy = false;
    const done = (result) => {
      form.removeEventListener("submit", onSubmit);
      cancelBtn.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve(result);
    };
    const onSubmit = async (e) => {
      e.preventDefault();
      if (busy) return;
      const result = input ? input.value : true;
      let problem = null;
      if (validate) {
        busy = true;
        ok.disabled = true;
        try {
          problem = await validate(result);
        } finally {
          busy = false;
          ok.disabled = false;
        }
      }
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        input?.setAttribute("aria-invalid", "true");
        input?.focus();
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
    // A question that can destroy something starts on Cancel, never on its OK.
    (input || (danger ? cancelBtn : ok)).focus();
    if (input && !multiline) input.select();
  });
}
