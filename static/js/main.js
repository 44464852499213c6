// Studio's entry point: wires the modules together.

import { attachAutocomplete } from "./autocomplete.js";
import { initAutosave } from "./autosave.js";
import { initConnection } from "./connection.js";
import { $, toast } from "./dom.js";
import { mountForm, onTryItOut } from "./editor.js";
import { environmentOptions, initEnvironments } from "./envs.js";
import { initFlows, openInitial } from "./flows.js";
import { refuse } from "./guard.js";
import { initHistory } from "./history.js";
import { initJsonView, setView } from "./jsonview.js";
import { isRunning, showDock, startRun } from "./runner.js";
import { store } from "./state.js";
import { initTheme } from "./theme.js";
import { openTryIt } from "./tryit.js";
import { initValidation, renderErrors, validateNow } from "./validate.js";

initTheme();
initConnection();
mountForm($("#form-view"), { onErrors: renderErrors });
initJsonView();
initValidation();
initAutosave();
initFlows();
initHistory();
initEnvironments();
onTryItOut(openTryIt);
attachAutocomplete($("#form-view"));

let stored = null;
try {
  stored = localStorage.getItem("flowrun.view");
} catch {
  stored = null;
}
setView(stored || (window.innerWidth >= 1600 ? "split" : "form"));

const modeSel = $("#run-mode");
const delayWrap = $("#auto-delay-wrap");
modeSel.addEventListener("change", () => {
  delayWrap.hidden = modeSel.value !== "auto";
});

async function go(extra = {}) {
  if (isRunning()) return showDock();
  const s = store.get();
  if (!s.flow) return;
  // Text that does not parse yet is never run as its last valid value.
  if (refuse("Not run")) return;
  if (!Array.isArray(s.flow.nodes) || !s.flow.nodes.length) {
    toast("Add a step first.", "warn");
    return;
  }
  const options = {};
  if (modeSel.value !== "run") options.mode = modeSel.value;
  if (modeSel.value === "auto") options.autoStepDelayMs = Math.max(0, Number($("#auto-delay").value) || 0);
  const env = extra.environment ? { environment: extra.environment } : await environmentOptions();
  if (env === null) return;
  Object.assign(options, env);
  startRun(store.get().flow, options);
}

$("#btn-run").addEventListener("click", () => go());
document.addEventListener("flowrun:run", (e) => go(e.detail || {}));

document.addEventListener("flowrun:unauthorized", () => {
  const bar = $("#auth-banner");
  if (bar) bar.hidden = false;
});

// Undo and redo: every edit of the flow, from any view.
const undoBtn = $("#btn-undo");
const redoBtn = $("#btn-redo");
const undoStatus = $("#undo-status");
function undo() {
  const label = store.undo();
  undoStatus.textContent = label ? `Undone: ${label}` : "Nothing to undo";
}
function redo() {
  const label = store.redo();
  undoStatus.textContent = label ? `Redone: ${label}` : "Nothing to redo";
}
undoBtn.addEventListener("click", undo);
redoBtn.addEventListener("click", redo);
store.subscribe(() => {
  undoBtn.disabled = !store.canUndo();
  redoBtn.disabled = !store.canRedo();
});

document.addEventListener("keydown", (e) => {
  const mod = e.ctrlKey || e.metaKey;
  if (!mod) return;
  // Ctrl/⌘+Enter runs the flow from anywhere on the page.
  if (e.key === "Enter" && !document.querySelector("dialog[open]")) {
    e.preventDefault();
    go();
    return;
  }
  // Inside dialogs (a prompt, a name) the field's own undo applies.
  if (e.target.closest && e.target.closest("dialog")) return;
  const key = e.key.toLowerCase();
  if (key === "z" && !e.shiftKey) {
    e.preventDefault();
    undo();
  } else if ((key === "z" && e.shiftKey) || key === "y") {
    e.preventDefault();
    redo();
  }
});

$("#btn-validate").addEventListener("click", async () => {
  if (refuse("Not checked")) return;
  const result = await validateNow();
  if (result && result.unreachable) toast("Could not reach the flowrun server: is it running?", "error");
  else if (result) toast(result.valid ? "The flow is valid" : `${(result.errors || []).length} problem(s) found`, result.valid ? "success" : "error");
});

// Phones: the flows list is a drawer.
const app = $("#app");
const flowsBtn = $("#btn-flows");
function drawer(open) {
  app.dataset.drawer = open ? "open" : "closed";
  flowsBtn.setAttribute("aria-expanded", String(open));
  if (open) $("#flow-list button, #btn-new")?.focus();
}
flowsBtn.addEventListener("click", () => drawer(app.dataset.drawer !== "open"));
document.addEventListener("flowrun:opened", () => {
  if (app.dataset.drawer === "open") {
    drawer(false);
    flowsBtn.focus();
  }
});
$("#sidebar").addEventListener("keydown", (e) => {
  if (e.key === "Escape" && app.dataset.drawer === "open") {
    drawer(false);
    flowsBtn.focus();
  }
});
$("#drawer-scrim").addEventListener("click", () => drawer(false));

openInitial();
