// History: past executions from the store, each re-openable read-only.

import { api, listOf } from "./api.js";
import { $, clear, formatDuration, h, toast } from "./dom.js";
import { isRunning, liveRunId, openPanel, showExecution } from "./runner.js";
import { state } from "./state.js";

const dialog = $("#history");
const list = $("#history-list");
const onlyThis = $("#history-only");

function when(value) {
  if (!value) return "";
  const d = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

let seq = 0;

async function refresh() {
  const mine = ++seq;
  clear(list);
  list.append(h("li", { class: "muted" }, "Loading…"));
  let items = [];
  try {
    const flow = onlyThis.checked && state.doc ? state.doc.name || "" : "";
    items = listOf(await api.executions(50, flow), "executions");
    if (mine !== seq) return; // a newer refresh is under way
  } catch (err) {
    if (mine !== seq) return;
    clear(list);
    list.append(h("li", { class: "card-error" }, `Could not load history: ${err.message}`));
    return;
  }
  clear(list);
  if (!items.length) {
    list.append(h("li", { class: "empty" }, "No executions yet."));
    return;
  }
  for (const ex of items) {
    const id = ex.id || ex.executionId;
    const status = ex.status || "unknown";
    list.append(
      h(
        "li",
        null,
        h(
          "button",
          { type: "button", class: "history-item", onclick: () => open(id) },
          h("span", { class: `pill ${pillKind(status)}` }, status),
          h("span", { class: "history-name" }, ex.flowName || ex.flow_name || ex.flow || "flow"),
          h("span", { class: "history-when muted small" }, when(ex.startedAt || ex.started_at)),
          h("span", { class: "history-stats muted small" }, stats(ex.summary)),
          h("code", { class: "history-id" }, id),
        ),
      ),
    );
  }
}

function stats(summary) {
  if (!summary || typeof summary !== "object") return "";
  const parts = [`${summary.stepsExecuted ?? 0} executed`];
  if (summary.stepsSkipped) parts.push(`${summary.stepsSkipped} skipped`);
  if (summary.stepsFailed) parts.push(`${summary.stepsFailed} failed`);
  if ((summary.notRun || []).length) parts.push(`${summary.notRun.length} not run`);
  if (typeof summary.duration === "number") parts.push(formatDuration(summary.duration));
  return parts.join(" · ");
}

function pillKind(status) {
  return { completed: "success", failed: "failure", interrupted: "interrupted", running: "running" }[status] || "";
}

async function open(id) {
  // The run panel shows one run at a time: a live run keeps it until it ends.
  if (isRunning()) {
    if (id === liveRunId()) {
      dialog.close();
      openPanel();
    } else {
      toast("A flow is running: past runs open here once it has ended (Show run returns to it).", "info");
    }
    return;
  }
  let record;
  try {
    record = await api.execution(id);
  } catch (err) {
    toast(`Could not open ${id}: ${err.message}`, "error");
    return;
  }
  dialog.close();
  showExecution(record.execution || record);
}

export function initHistory() {
  $("#btn-history").addEventListener("click", () => {
    dialog.showModal();
    refresh();
  });
  $("#history-refresh").addEventListener("click", refresh);
  onlyThis.addEventListener("change", refresh);
  $("#history-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (e) => {
    if (e.target === dialog) dialog.close();
  });
}
