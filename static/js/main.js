// Studio's entry point: wires the modules together.

import { $, toast } from "./dom.js";
import { onTryItOut, setView, validateNow } from "./editor.js";
import { initFlows, openInitial } from "./flows.js";
import { initHistory } from "./history.js";
import { isRunning, openPanel, startRun } from "./runner.js";
import { state } from "./state.js";
import { initTheme } from "./theme.js";
import { openTryIt } from "./tryit.js";

initTheme();
initFlows();
initHistory();
onTryItOut(openTryIt);

let view = null;
try {
  view = localStorage.getItem("flowrun.view");
} catch {
  view = null;
}
setView(view || (window.innerWidth >= 1600 ? "split" : "form"));

const modeSel = $("#run-mode");
const delayWrap = $("#auto-delay-wrap");
modeSel.addEventListener("change", () => {
  delayWrap.hidden = modeSel.value !== "auto";
});

function runOptions() {
  const options = {};
  if (modeSel.value !== "run") options.mode = modeSel.value;
  if (modeSel.value === "auto") options.autoStepDelayMs = Math.max(0, Number($("#auto-delay").value) || 0);
  return options;
}

document.addEventListener("flowrun:unauthorized", () => {
  const bar = $("#auth-banner");
  if (bar) bar.hidden = false;
});

$("#btn-run").addEventListener("click", () => {
  if (isRunning()) return openPanel();
  if (!state.doc) return;
  if (!$("#json-error").hidden) {
    toast("The JSON view has a syntax error: fix it first.", "error");
    return;
  }
  // A form field holding broken JSON has not reached the flow: running now would
  // silently send its last valid value.
  const broken = document.querySelector("#form-view .field-error.local:not([hidden])");
  if (broken) {
    const field = broken.closest(".field");
    const label = field?.querySelector("label")?.textContent || "A field";
    toast(`${label} is not valid JSON: fix it first.`, "error");
    field?.querySelector("textarea, input")?.focus();
    return;
  }
  if (!Array.isArray(state.doc.nodes) || !state.doc.nodes.length) {
    toast("Add a step first.", "warn");
    return;
  }
  startRun(state.doc, runOptions());
});

// Ctrl/⌘+Enter runs the flow from anywhere on the page.
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && !$("#run-panel").open) {
    e.preventDefault();
    $("#btn-run").click();
  }
});

$("#btn-validate").addEventListener("click", async () => {
  const result = await validateNow();
  if (result && result.unreachable) toast("Could not reach the flowrun server: is it running?", "error");
  else if (result) toast(result.valid ? "The flow is valid" : `${(result.errors || []).length} problem(s) found`, result.valid ? "success" : "error");
});

openInitial();
