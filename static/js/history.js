// History: every stored execution, a page at a time (scroll or Load more), searched
// by flow name and filtered by status and date. A run opens in the same RunView as
// live runs; it can be run again, its flow opened, and any two compared.

import { api, listOf } from "./api.js";
import { compareRuns } from "./compare.js";
import { $, clear, debounce, downloadJson, formatDuration, h, toast } from "./dom.js";
import { confirmDiscard, fileForFlow, openFlow } from "./flows.js";
import { fromRecord } from "./runmodel.js";
import { bringBack, isRunning, liveRunId } from "./runner.js";
import { RunView } from "./runview.js";
import { store } from "./state.js";

const PAGE = 50;
const dialog = $("#history");
const list = $("#history-list");
const more = $("#history-more");
const scroller = $("#history-scroll");
const detail = $("#history-detail");
const q = $("#history-q");
const status = $("#history-status");
const since = $("#history-since");
const until = $("#history-until");
const onlyThis = $("#history-only");
const compareBtn = $("#history-compare");
const selectedText = $("#history-selected");
const countText = $("#history-count");

let next = null;
let seq = 0;
let selected = []; // execution ids, at most two, oldest choice first
let views = [];

function when(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

function pillKind(s) {
  return { completed: "success", failed: "failure", interrupted: "interrupted", running: "running" }[s] || "";
}

function stats(summary) {
  if (!summary || typeof summary !== "object") return "";
  const parts = [];
  if (typeof summary.stepsExecuted === "number") parts.push(`${summary.stepsExecuted} executed`);
  if (summary.stepsSkipped) parts.push(`${summary.stepsSkipped} skipped`);
  if (summary.stepsFailed) parts.push(`${summary.stepsFailed} failed`);
  if ((summary.notRun || []).length) parts.push(`${summary.notRun.length} not run`);
  if (typeof summary.duration === "number") parts.push(formatDuration(summary.duration));
  return parts.join(" · ");
}

// A day picked in the page is a day where the person is: sent as the UTC moments
// of its local start and end.
function day(value, end) {
  return value ? new Date(`${value}T${end ? "23:59:59.999" : "00:00:00"}`).toISOString() : "";
}

function params() {
  const flow = onlyThis.checked && store.get().flow ? store.get().flow.name || "" : "";
  return { limit: PAGE, q: q.value.trim(), status: status.value, since: day(since.value, false), until: day(until.value, true), flow };
}

async function load(reset) {
  const mine = ++seq;
  if (reset) {
    next = null;
    clear(list);
    list.append(h("li", { class: "muted" }, "Loading…"));
  }
  more.disabled = true;
  let page;
  try {
    page = await api.executions({ ...params(), before: reset ? null : next });
  } catch (err) {
    if (mine !== seq) return;
    if (reset) clear(list);
    list.append(h("li", { class: "card-error" }, `Could not load history: ${err.message}`));
    more.hidden = true;
    return;
  }
  if (mine !== seq) return; // a newer load is under way
  if (reset) clear(list);
  const items = listOf(page, "executions");
  next = page && page.next ? page.next : null;
  for (const ex of items) list.append(item(ex));
  if (!list.children.length) list.append(h("li", { class: "empty" }, "No runs match."));
  more.hidden = !next;
  more.disabled = false;
  const shown = list.querySelectorAll(".history-item").length;
  countText.textContent = `${shown} run${shown === 1 ? "" : "s"} shown${next ? ", more below" : ""}`;
  // A list shorter than its box shows the end already: the next page comes too.
  requestAnimationFrame(() => {
    if (mine === seq && next && inView(more)) load(false);
  });
}

function inView(el) {
  if (el.hidden) return false;
  const r = el.getBoundingClientRect();
  const box = scroller.getBoundingClientRect();
  return r.top < box.bottom && r.bottom > box.top;
}

function item(ex) {
  const id = ex.executionId || ex.id;
  const st = ex.status || "unknown";
  const box = h("input", { type: "checkbox", class: "history-pick", "aria-label": `Compare ${id}`, dataset: { id } });
  box.checked = selected.includes(id);
  box.addEventListener("change", () => pick(id, box.checked));
  return h(
    "li",
    { class: "history-row" },
    box,
    h(
      "button",
      { type: "button", class: "history-item", dataset: { id }, onclick: () => open(id) },
      h("span", { class: `pill ${pillKind(st)}` }, st),
      h("span", { class: "history-name" }, ex.flowName || ex.flow || "flow"),
      h("span", { class: "history-when muted small" }, when(ex.startedAt)),
      h("span", { class: "history-stats muted small" }, stats(ex.summary), ex.environment ? h("span", { class: "env-chip" }, ex.environment) : null),
      h("code", { class: "history-id" }, id),
    ),
  );
}

function pick(id, on) {
  selected = selected.filter((x) => x !== id);
  if (on) selected.push(id);
  if (selected.length > 2) selected = selected.slice(-2);
  for (const box of list.querySelectorAll(".history-pick")) box.checked = selected.includes(box.dataset.id);
  compareBtn.disabled = selected.length !== 2;
  selectedText.textContent = selected.length ? `${selected.length} of 2 chosen` : "Choose two runs to compare";
}

function clearDetail() {
  for (const v of views) v.destroy();
  views = [];
  clear(detail);
}

// ---- one run ---------------------------------------------------------------------------

async function open(id) {
  if (id === liveRunId()) {
    dialog.close();
    bringBack();
    return;
  }
  let record;
  try {
    record = await api.execution(id);
  } catch (err) {
    toast(`Could not open ${id}: ${err.message}`, "error");
    return;
  }
  clearDetail();
  const model = fromRecord(record);
  const file = fileForFlow(model.flowName);
  const isOpen = store.get().flow && store.get().flow.name === model.flowName;
  const again = h("button", { type: "button", class: "btn primary", disabled: !(file || isOpen), title: file || isOpen ? null : `No workspace flow is named “${model.flowName}”` }, "Run again");
  again.addEventListener("click", () => runAgain(model, file));
  const openBtn = h("button", { type: "button", class: "btn", disabled: !file }, "Open flow");
  openBtn.addEventListener("click", async () => {
    if (await openFlow(file)) dialog.close();
  });
  const log = h("button", { type: "button", class: "btn ghost", onclick: () => downloadJson(`${id}.json`, record) }, "Download log");
  const view = new RunView({
    heading: (m) => `History: ${m.flowName || "flow"}`,
    actions: [again, openBtn, log],
    order: "oldest",
  });
  views = [view];
  detail.append(view.el);
  view.render(model);
  view.heading.tabIndex = -1;
  view.heading.focus();
  for (const el of list.querySelectorAll(".history-item")) el.classList.toggle("current", el.dataset.id === id);
}

async function runAgain(model, file) {
  if (isRunning()) {
    toast("A flow is running: run this one again once it has ended.", "info");
    return;
  }
  const s = store.get();
  if (!(s.flow && s.flow.name === model.flowName)) {
    if (!(await confirmDiscard())) return;
    if (!(await openFlow(file, { quiet: true }))) return;
  }
  dialog.close();
  const options = {};
  if (model.environment && store.get().env.available) options.environment = model.environment;
  document.dispatchEvent(new CustomEvent("flowrun:run", { detail: options }));
}

// ---- two runs ------------------------------------------------------------------------------

function cell(text, cls) {
  return h("td", { class: cls || null }, text);
}

const STATUS_WORDS = { not_run: "not run", absent: "—" };

function statusText(status, http) {
  return `${STATUS_WORDS[status] || status}${http ? ` · ${http}` : ""}`;
}

function durationText(d) {
  return d === null ? "—" : formatDuration(d);
}

async function compare() {
  if (selected.length !== 2) return;
  let records;
  try {
    records = await Promise.all(selected.map((id) => api.execution(id)));
  } catch (err) {
    toast(`Could not compare: ${err.message}`, "error");
    return;
  }
  clearDetail();
  const [a, b] = records.map(fromRecord);
  const { rows, changed } = compareRuns(a, b);
  const table = h(
    "table",
    { class: "compare-table" },
    h(
      "thead",
      null,
      h("tr", null, h("th", { scope: "col" }, "Step"), h("th", { scope: "col" }, "A"), h("th", { scope: "col" }, "B"), h("th", { scope: "col" }, "Duration A → B"), h("th", { scope: "col" }, "What changed")),
    ),
    h(
      "tbody",
      null,
      rows.map((r) => {
        const delta = r.durationA !== null && r.durationB !== null ? ` (${r.durationB >= r.durationA ? "+" : "−"}${formatDuration(Math.abs(r.durationB - r.durationA))})` : "";
        return h(
          "tr",
          { class: r.changed ? "changed" : "same" },
          h("th", { scope: "row" }, r.name, r.changed ? h("span", { class: "changed-tag" }, "changed") : null),
          cell(statusText(r.statusA, r.httpA), r.statusChanged ? "diff" : ""),
          cell(statusText(r.statusB, r.httpB), r.statusChanged ? "diff" : ""),
          cell(`${durationText(r.durationA)} → ${durationText(r.durationB)}${delta}`),
          h(
            "td",
            null,
            r.changes.length
              ? h("ul", { class: "changes" }, r.changes.map((c) => h("li", null, h("code", null, c.where), ": ", h("span", { class: "was" }, c.a), " → ", h("span", { class: "now" }, c.b))), r.moreChanges ? h("li", { class: "muted" }, `and ${r.moreChanges} more`) : null)
              : h("span", { class: "muted" }, "same values"),
          ),
        );
      }),
    ),
  );
  const labelOf = (m, tag) => `${tag}: ${m.flowName} · ${when(m.startedAt)}`;
  const left = new RunView({ heading: (m) => labelOf(m, "A"), compact: true, tools: false });
  const right = new RunView({ heading: (m) => labelOf(m, "B"), compact: true, tools: false });
  views = [left, right];
  detail.append(
    h(
      "section",
      { class: "compare", "aria-label": "Comparison" },
      h("h3", { class: "compare-title", tabindex: "-1" }, `Comparing two runs: ${changed} of ${rows.length} step${rows.length === 1 ? "" : "s"} changed`),
      h("div", { class: "compare-scroll" }, table),
      h("div", { class: "compare-sides" }, left.el, right.el),
    ),
  );
  left.render(a);
  right.render(b);
  detail.querySelector(".compare-title").focus();
}

// ---- wiring ------------------------------------------------------------------------------------

export function initHistory() {
  $("#btn-history").addEventListener("click", () => {
    dialog.showModal();
    load(true);
  });
  $("#history-refresh").addEventListener("click", () => load(true));
  more.addEventListener("click", () => load(false));
  // Scrolling to the end of the list loads the next page by itself.
  new IntersectionObserver(
    (seen) => {
      if (seen.some((e) => e.isIntersecting) && next && !more.disabled && dialog.open) load(false);
    },
    { root: scroller },
  ).observe(more);
  const reload = debounce(() => load(true), 250);
  q.addEventListener("input", reload);
  for (const el of [status, since, until, onlyThis]) el.addEventListener("change", () => load(true));
  compareBtn.addEventListener("click", compare);
  $("#history-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", clearDetail);
  pick(null, false);
}

