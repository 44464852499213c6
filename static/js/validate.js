// Live validation: the flow is checked by POST /api/validate a moment after each
// change, and every problem is put next to the field it is about. The header says
// whether the flow is valid, whether text waits in a field, or whether the server
// could not be asked.

import { api, ApiError } from "./api.js";
import { $, $$, clear, debounce, h } from "./dom.js";
import { draftList, store } from "./state.js";

const validity = $("#validity");
const generalErrors = $("#general-errors");
const formView = $("#form-view");

let seq = 0;
let unreachable = false;

export async function validateNow() {
  const s = store.get();
  if (!s.flow) return null;
  const mine = ++seq;
  unreachable = false;
  showValidity("checking");
  let result;
  try {
    result = await api.validate(s.flow);
  } catch (err) {
    if (mine !== seq) return null;
    if (!(err instanceof ApiError)) {
      unreachable = true;
      showValidity();
      return { valid: null, unreachable: true, errors: [] };
    }
    result = { valid: false, errors: err.errors.length ? err.errors : [{ path: "", message: err.message }] };
  }
  if (mine !== seq) return null;
  store.set({ errors: { errors: result.errors || [], warnings: result.warnings || [], checked: true } });
  return result;
}

const validateSoon = debounce(validateNow, 450);

function showValidity(checking) {
  const s = store.get();
  const drafts = draftList(s);
  const { errors, warnings } = s.errors;
  let text;
  let cls;
  if (drafts.length) {
    text = `${drafts.length} field${drafts.length > 1 ? "s" : ""} not valid yet`;
    cls = "bad";
  } else if (checking === "checking") {
    text = "Checking…";
    cls = "checking";
  } else if (unreachable) {
    text = "Not checked: server unreachable";
    cls = "bad";
  } else if (errors.length) {
    text = `${errors.length} problem${errors.length > 1 ? "s" : ""}`;
    cls = "bad";
  } else {
    text = warnings.length ? `Valid · ${warnings.length} warning${warnings.length > 1 ? "s" : ""}` : "Valid";
    cls = "ok";
  }
  validity.textContent = text;
  validity.className = `validity ${cls}`;
}

function pathMatches(fieldPath, errPath) {
  if (!errPath.startsWith(fieldPath)) return false;
  const rest = errPath.slice(fieldPath.length);
  return rest === "" || rest[0] === "." || rest[0] === "[";
}

function targetFor(errPath) {
  let best = null;
  for (const el of $$("[data-path]", formView)) {
    const p = el.dataset.path;
    if (el.closest("[hidden]") && !el.classList.contains("node")) continue;
    if (pathMatches(p, errPath) && (!best || p.length > best.dataset.path.length)) best = el;
  }
  return best;
}

export function renderErrors() {
  for (const el of $$(".field-error.remote", formView)) el.remove();
  for (const el of $$(".remote-invalid", formView)) {
    el.classList.remove("remote-invalid");
    el.removeAttribute("aria-invalid");
  }
  for (const el of $$(".node-errors", formView)) el.textContent = "";
  clear(generalErrors);
  generalErrors.hidden = true;
  const s = store.get();
  const { errors, warnings } = s.errors;
  const all = [...errors.map((e) => ({ ...e, level: "error" })), ...warnings.map((e) => ({ ...e, level: "warning" }))];
  const general = [];
  const perNode = new Map();
  for (const err of all) {
    const path = err.path || "";
    let target = path ? targetFor(path) : null;
    // A step-level error, or one inside a folded step: on the step's header.
    if (target && (target.classList.contains("node") || target.classList.contains("flow-settings"))) target = target.querySelector(".node-head");
    if (!target || target === formView) {
      general.push(err);
      continue;
    }
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
    if (err.level === "error") {
      target.closest("details.advanced")?.setAttribute("open", "");
      const control = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
      if (control && !control.hasAttribute("aria-invalid")) {
        control.setAttribute("aria-invalid", "true");
        control.classList.add("remote-invalid");
      }
    }
  }
  for (const [nodeEl, n] of perNode) {
    const badge = nodeEl.querySelector(".node-errors");
    if (badge) badge.textContent = `${n} problem${n > 1 ? "s" : ""}`;
  }
  if (general.length) {
    generalErrors.hidden = false;
    generalErrors.append(
      h("ul", null, general.map((e) => h("li", { class: e.level }, e.path ? h("code", null, e.path) : null, " ", e.message || "", e.hint ? ` — ${e.hint}` : ""))),
    );
  }
  showValidity();
}

export function initValidation() {
  store.subscribe((s, prev, meta) => {
    if (s.flow !== prev.flow && meta.kind !== "set") validateSoon();
    if (s.errors !== prev.errors || s.drafts !== prev.drafts) renderErrors();
  });
  // The server is back: check again what could not be checked.
  document.addEventListener("flowrun:online", () => {
    if (unreachable) validateNow();
  });
}
