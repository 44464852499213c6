// The run panel: owns the state of the current run (one at a time) and renders
// its events. Also shows stored executions read-only (history).

import { api, ApiError, isConflict } from "./api.js";
import { inputCard, notRunCard, runningCard, stepCard } from "./cards.js";
import { $, clear, downloadJson, formatDuration, h, toast } from "./dom.js";
import { executeStream } from "./sse.js";
import { state } from "./state.js";

// A "Running…" placeholder appears only if a step's result is this late.
export const PLACEHOLDER_DELAY_MS = 800;
const SECRET_KEY = /pass|secret|token|otp|pin/i;

const panel = $("#run-panel");
const cardsEl = $("#cards");
const summaryEl = $("#summary");
const stateEl = $("#run-state");
const metaEl = $("#run-meta");
const titleEl = $("#run-title");
const progressBar = $("#progress-bar");
const progressText = $("#progress-text");
const btnInterrupt = $("#btn-interrupt");
const btnAgain = $("#btn-again");
const btnLog = $("#btn-log");
const btnClose = $("#btn-close-run");
const btnShowRun = $("#btn-show-run");
const showRunState = $("#show-run-state");
const pauseBar = $("#pause-bar");
const pauseText = $("#pause-text");
const btnContinue = $("#btn-continue");
const promptOverlay = $("#prompt-overlay");
const promptForm = $("#prompt-form");
const promptFields = $("#prompt-fields");
const promptSub = $("#prompt-sub");
const promptError = $("#prompt-error");

let current = null; // the run being shown
let countdown = null;

export function isRunning() {
  return Boolean(current && !current.ended && !current.readOnly);
}

// The live run's execution id (null when no run is live).
export function liveRunId() {
  return isRunning() ? current.id : null;
}

export function openPanel() {
  if (!panel.open) panel.showModal();
  if (current) current.unseen = false;
  syncIndicator();
  // A prompt left waiting while the panel was closed is answered from here.
  if (!promptOverlay.hidden) promptFields.querySelector("input")?.focus();
}

function setPill(text, kind) {
  stateEl.textContent = text;
  stateEl.className = `pill ${kind || ""}`;
  syncIndicator();
}

// The panel can be closed at any time. A live run goes on (the stream is still
// read); "Show run" in the top bar, like Go with the Flow, brings the panel back,
// and says meanwhile what the run is doing, or how it ended.
function syncIndicator() {
  const run = current;
  const show = Boolean(run && !run.readOnly && !panel.open && (!run.ended || run.unseen));
  btnShowRun.hidden = !show;
  if (!show) return;
  showRunState.textContent = stateEl.textContent;
  showRunState.className = stateEl.className;
}

btnShowRun.addEventListener("click", openPanel);

panel.addEventListener("close", () => {
  syncIndicator();
  if (!isRunning()) return;
  toast(
    current.prompt || current.inputCards.size
      ? "The flow is waiting for your input: Show run brings the prompt back."
      : "The flow keeps running: Show run brings it back.",
    "info",
  );
  btnShowRun.focus();
});

function progress(run) {
  const total = run.total || 0;
  const done = Math.min(run.finished, total || run.finished);
  progressText.textContent = `${done} / ${total} steps`;
  progressBar.style.width = total ? `${(100 * done) / total}%` : "0";
}

function resetPanel(title) {
  clearInterval(countdown);
  clear(cardsEl);
  clear(summaryEl);
  summaryEl.hidden = true;
  pauseBar.hidden = true;
  closePrompt();
  titleEl.textContent = title;
  metaEl.textContent = "";
  progressBar.style.width = "0";
  progressBar.parentElement.className = "progress";
}

function nodeAt(run, index) {
  const nodes = (run.config && run.config.nodes) || [];
  return nodes[index] || null;
}

function prepend(card) {
  cardsEl.prepend(card);
}

// ---- starting a run ------------------------------------------------------------

export async function startRun(config, options = {}) {
  if (isRunning()) {
    openPanel();
    return;
  }
  const run = {
    config: structuredClone(config),
    options: structuredClone(options),
    id: null,
    total: (config.nodes || []).length,
    finished: 0,
    ended: false,
    stopping: false,
    readOnly: false,
    timers: new Map(), // stepIndex -> 800 ms timer
    cards: new Map(), // stepIndex -> card element
    inputCards: new Map(),
    prompt: null,
    events: [],
    end: null,
    cancel: null,
  };
  current = run;
  resetPanel(`Run: ${config.name || state.file || "flow"}`);
  setPill("Starting…", "running");
  btnInterrupt.hidden = false;
  btnInterrupt.disabled = false;
  btnInterrupt.textContent = "Interrupt the Flow";
  btnAgain.hidden = true;
  btnLog.hidden = true;
  btnClose.hidden = false;
  progress(run);
  openPanel();
  btnInterrupt.focus();
  // Check first: an invalid flow is listed without a failed request (the 400 of
  // execute-stream would be logged as a console error).
  try {
    const check = await api.validate(config);
    if (run !== current) return;
    if (check && check.valid === false) {
      finish(run, { kind: "invalid", message: "Invalid flow", errors: check.errors || [] });
      return;
    }
  } catch {
    if (run !== current) return; // the stream's own answer says what is wrong
  }
  try {
    const stream = await executeStream({ config, options }, (name, data) => handle(run, name, data));
    run.id = run.id || stream.executionId;
    run.cancel = stream.cancel;
    metaEl.textContent = run.id || "";
    if (run.stopRequested) requestStop(run);
    await stream.done;
  } catch (err) {
    if (run !== current) return;
    if (err instanceof ApiError && err.errors.length) {
      finish(run, { kind: "invalid", message: err.message, errors: err.errors });
    } else if (err instanceof TypeError) {
      // fetch's network failure ("Failed to fetch"): say what it means.
      const message = run.id
        ? "The connection to the flowrun server was lost before the run finished."
        : "Could not reach the flowrun server: is it running?";
      finish(run, { kind: "broken", message });
    } else {
      finish(run, { kind: "broken", message: err.message || String(err) });
    }
    return;
  }
  if (run === current && !run.ended) {
    finish(run, { kind: "broken", message: "The stream ended before the run finished." });
  }
}

// ---- events --------------------------------------------------------------------

function handle(run, name, data) {
  if (run !== current || run.ended) return;
  if (!run.id && data.executionId) run.id = data.executionId;
  // Events of any other execution are ignored.
  if (data.executionId && data.executionId !== run.id) return;
  run.events.push({ event: name, data });
  switch (name) {
    case "start":
      run.total = data.totalSteps ?? run.total;
      run.startedAt = data.startedAt;
      metaEl.textContent = run.id;
      if (!run.stopping) setPill("Running", "running");
      progress(run);
      break;
    case "step_start":
      onStepStart(run, data);
      break;
    case "input_required":
      pauseBar.hidden = true;
      if (!run.stopping) {
        setPill("Waiting for input", "input");
        openPrompt(run, data);
        if (!panel.open) toast(`Step #${data.step} is waiting for your input: Show run brings the prompt.`, "info");
      }
      break;
    case "paused":
      onPaused(run, data);
      break;
    case "step":
      onStep(run, data);
      break;
    case "error":
      run.error = data.message;
      run.closing = true;
      break;
    case "end":
      run.end = data;
      finish(run, { kind: "end" });
      break;
    default:
      break;
  }
}

function onStepStart(run, data) {
  const idx = data.stepIndex;
  pauseBar.hidden = true;
  clearInterval(countdown);
  // The step starts only once its prompt is answered: if this page did not send
  // the answer, someone else did, and answering again could only be refused.
  const prompt = run.prompt && run.prompt.stepIndex === idx ? run.prompt : null;
  const waiting = Boolean(prompt) || run.inputCards.has(idx);
  removeInputCard(run, idx);
  if (prompt) closePrompt();
  if (waiting && !(prompt && prompt.sending)) {
    toast(`The prompt of step #${data.step} was answered elsewhere.`, "info");
  }
  if (!run.stopping) setPill("Running", "running");
  clearTimeout(run.timers.get(idx));
  run.timers.set(
    idx,
    setTimeout(() => {
      run.timers.delete(idx);
      if (run !== current || run.ended || run.cards.has(idx)) return;
      const card = runningCard(data);
      run.cards.set(idx, card);
      prepend(card);
    }, PLACEHOLDER_DELAY_MS),
  );
}

function onStep(run, rec) {
  const idx = rec.stepIndex;
  clearTimeout(run.timers.get(idx));
  run.timers.delete(idx);
  removeInputCard(run, idx);
  if (run.prompt && run.prompt.stepIndex === idx) closePrompt();
  const card = stepCard(rec);
  const placeholder = run.cards.get(idx);
  // Replace the "Running…" placeholder in place, else the newest goes on top.
  if (placeholder && placeholder.isConnected) placeholder.replaceWith(card);
  else prepend(card);
  run.cards.set(idx, card);
  run.finished += 1;
  // Nothing starts after the last step, or after a failed one (unless the run
  // goes on after failures): the run is only finishing, there is nothing to stop.
  if (run.finished >= run.total || (rec.status === "failed" && !run.options.continueOnFailure)) {
    run.closing = true;
  }
  progress(run);
  if (rec.response && rec.response.body && typeof rec.response.body === "object") {
    state.lastResponses[rec.id] = rec.response.body;
  }
  if (rec.launchBrowser) openExternal(rec.launchBrowser);
}

function openExternal(url) {
  let win = null;
  try {
    win = window.open(url, "_blank");
  } catch {
    win = null;
  }
  if (win) win.opener = null;
  else toast("The browser blocked the new tab: use the link in the step card.", "warn");
}

function onPaused(run, data) {
  if (run.stopping) return;
  const node = nodeAt(run, data.stepIndex);
  const label = `step #${data.step}${node ? ` — ${node.name || node.id}` : ""}`;
  pauseBar.hidden = false;
  clearInterval(countdown);
  setPill("Paused", "paused");
  if (data.resumeAt) {
    btnContinue.textContent = "Continue now";
    btnContinue.hidden = false;
    const tick = () => {
      const left = Math.max(0, data.resumeAt - Date.now());
      pauseText.textContent = `Auto-step: ${label} in ${(left / 1000).toFixed(1)} s`;
      if (left) return;
      clearInterval(countdown);
      // The server goes on by itself now: "Continue now" could only be refused.
      pauseText.textContent = `Auto-step: starting ${label}…`;
      btnContinue.hidden = true;
    };
    tick();
    countdown = setInterval(tick, 100);
  } else {
    btnContinue.textContent = "Continue";
    btnContinue.hidden = false;
    pauseText.textContent = `Paused before ${label}`;
  }
  btnContinue.focus();
}

btnContinue.addEventListener("click", async () => {
  const run = current;
  if (!run || run.ended || !run.id) return;
  pauseBar.hidden = true;
  clearInterval(countdown);
  try {
    await api.resume(run.id);
  } catch (err) {
    // 409: not paused any more (the auto-step delay ran out, or the run moved
    // on or ended meanwhile); the stream shows what happens next.
    if (!isConflict(err)) toast(`Continue failed: ${err.message}`, "error");
  }
});

// ---- prompts ---------------------------------------------------------------------

function openPrompt(run, ev) {
  run.prompt = ev;
  clear(promptFields);
  promptError.hidden = true;
  promptSub.textContent = `Step #${ev.step}: ${ev.name || ""}`;
  // Ask in the order the flow lists its prompts.
  const node = nodeAt(run, ev.stepIndex);
  const order = Object.keys((node && node.userPrompts) || {});
  const entries = Object.entries(ev.prompts || {}).sort(
    ([a], [b]) => (order.indexOf(a) + 1 || 1e9) - (order.indexOf(b) + 1 || 1e9),
  );
  for (const [key, text] of entries) {
    const id = `prompt-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    promptFields.append(
      h(
        "div",
        { class: "field" },
        h("label", { for: id }, String(text || key)),
        h("input", {
          id,
          name: key,
          type: SECRET_KEY.test(key) ? "password" : "text",
          autocomplete: "off",
          spellcheck: "false",
        }),
        h("span", { class: "field-hint" }, key),
      ),
    );
  }
  promptOverlay.hidden = false;
  promptFields.querySelector("input")?.focus();
}

function closePrompt() {
  const wasOpen = !promptOverlay.hidden;
  promptOverlay.hidden = true;
  if (current) current.prompt = null;
  // Give focus back to the panel rather than losing it with the hidden form.
  if (wasOpen && promptOverlay.contains(document.activeElement)) {
    (btnInterrupt.hidden || btnInterrupt.disabled ? btnClose : btnInterrupt).focus();
  }
}

function removeInputCard(run, idx) {
  const card = run.inputCards.get(idx);
  if (card) card.remove();
  run.inputCards.delete(idx);
}

promptForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const run = current;
  const ev = run && run.prompt;
  if (!ev || run.ended || ev.sending) return;
  const values = {};
  for (const input of promptFields.querySelectorAll("input")) values[input.name] = input.value;
  ev.sending = true; // a second Enter must not post the answer twice
  // Say "Running" now: events that arrive before the answer's response (paused,
  // the next prompt, the end) set the pill themselves and must keep the last word.
  if (!run.stopping) setPill("Running", "running");
  try {
    await api.provideInput(run.id, ev.stepIndex, values);
  } catch (err) {
    ev.sending = false;
    if (run.prompt !== ev || run.ended) return;
    if (isConflict(err)) {
      // Already answered (through another worker or client, or by an earlier try
      // whose reply was lost): the run has its answer, so this prompt is done.
      closePrompt();
      removeInputCard(run, ev.stepIndex);
      toast(`The prompt of step #${ev.step} was already answered.`, "info");
      return;
    }
    if (!run.stopping) setPill("Waiting for input", "input");
    promptError.textContent = `Could not send the answer: ${err.message}`;
    promptError.hidden = false;
    return;
  }
  // The stream may have moved on while the answer was in flight (the run ended,
  // or the next step's prompt opened): only close this prompt, never a newer one.
  if (run !== current || run.ended) return;
  if (run.prompt === ev) closePrompt();
  removeInputCard(run, ev.stepIndex);
});

function cancelPrompt() {
  const run = current;
  const ev = run && run.prompt;
  closePrompt();
  if (!ev || run.ended) return;
  // Keep a card that reopens the prompt.
  const card = inputCard(ev, () => {
    if (run === current && !run.ended) openPrompt(run, ev);
  });
  removeInputCard(run, ev.stepIndex);
  run.inputCards.set(ev.stepIndex, card);
  prepend(card);
  card.querySelector("button")?.focus();
}

$("#prompt-cancel").addEventListener("click", cancelPrompt);

panel.addEventListener("cancel", (e) => {
  // Escape closes the prompt first (its card brings it back), then the panel
  // (a live run goes on: see syncIndicator).
  if (!promptOverlay.hidden) {
    e.preventDefault();
    cancelPrompt();
  }
});

// ---- interrupt -------------------------------------------------------------------

btnInterrupt.addEventListener("click", () => {
  const run = current;
  if (!run || run.ended || run.stopping) return;
  if (run.closing) {
    // The last step has reported (or a failed one ended the run) and `end` is on
    // its way: the server would only answer 409.
    toast("Nothing left to interrupt: the flow has run its last step.", "info");
    return;
  }
  run.stopping = true;
  btnInterrupt.textContent = "Interrupting the Flow...";
  btnInterrupt.disabled = true;
  setPill("Interrupting", "stopping");
  pauseBar.hidden = true;
  clearInterval(countdown);
  closePrompt();
  if (run.id) requestStop(run);
  else run.stopRequested = true; // sent as soon as the execution id is known
});

async function requestStop(run) {
  // Asked before the execution id was known: the run may have ended since.
  if (run.ended || run.closing) return;
  try {
    await api.stop(run.id);
  } catch (err) {
    // 409: it finished meanwhile; the stream's `end` tells the rest.
    if (!isConflict(err)) toast(`Stop failed: ${err.message}`, "error");
  }
  // Keep reading: the in-flight step's result and `end` are still to come.
}

// ---- the end ---------------------------------------------------------------------

function finish(run, outcome) {
  run.ended = true;
  run.unseen = !panel.open;
  for (const t of run.timers.values()) clearTimeout(t);
  run.timers.clear();
  clearInterval(countdown);
  pauseBar.hidden = true;
  closePrompt();
  for (const card of run.inputCards.values()) card.remove();
  run.inputCards.clear();
  // Placeholders still showing never got a result.
  for (const [idx, card] of run.cards) {
    if (card.dataset.status === "running") {
      card.remove();
      run.cards.delete(idx);
    }
  }
  const end = run.end;
  if (end) {
    const next = (end.notRun || [])[0];
    if (next !== undefined) {
      const index = (run.config.nodes || []).findIndex((n) => n.id === next);
      const node = run.config.nodes[index] || { id: next };
      prepend(
        notRunCard({
          step: index + 1,
          stepIndex: index,
          id: node.id,
          name: node.name,
          method: (node.method || "").toUpperCase(),
          url: node.url,
          note: end.interrupted ? "Not started: the flow was interrupted." : "Not started: the flow stopped early.",
        }),
      );
    }
  }
  renderSummary(run, outcome);
  if (run.unseen) toast(`${summaryEl.querySelector("h3")?.textContent || "The run ended"}: Show run has the details.`, "info");
  btnInterrupt.hidden = true;
  btnAgain.hidden = false;
  btnLog.hidden = !end;
  btnClose.hidden = false;
  if (run.cancel) run.cancel();
  btnAgain.focus();
}

function stat(label, value, cls) {
  return h("div", { class: `stat ${cls || ""}` }, h("span", { class: "stat-value" }, String(value)), h("span", { class: "stat-label" }, label));
}

function renderSummary(run, outcome) {
  clear(summaryEl);
  summaryEl.hidden = false;
  const end = run.end;
  let title;
  let kind;
  if (outcome.kind === "invalid") {
    title = "The flow is not valid";
    kind = "failure";
  } else if (outcome.kind === "broken") {
    title = "The run could not finish";
    kind = "failure";
  } else if (end.interrupted) {
    title = "Flow interrupted";
    kind = "interrupted";
  } else if (end.success) {
    title = "Flow completed";
    kind = "success";
  } else {
    title = "Flow failed";
    kind = "failure";
  }
  setPill(kind === "success" ? "Completed" : kind === "interrupted" ? "Interrupted" : "Failed", kind);
  summaryEl.className = `summary ${kind}`;
  progressBar.parentElement.className = `progress ended ${kind}`;
  summaryEl.append(h("h3", null, title));
  if (end) {
    summaryEl.append(
      h(
        "div",
        { class: "stats" },
        stat("executed", end.stepsExecuted ?? 0),
        stat("skipped", end.stepsSkipped ?? 0),
        stat("failed", end.stepsFailed ?? 0, end.stepsFailed ? "bad" : ""),
        stat("total time", formatDuration(end.duration ?? 0)),
      ),
    );
    if (end.interrupted) {
      summaryEl.append(h("p", null, "Interrupted on request: the step in flight completed and nothing after it was started."));
    }
    if ((end.notRun || []).length) {
      summaryEl.append(h("p", { class: "muted" }, `Not run: ${end.notRun.join(", ")}`));
    }
  }
  const message = outcome.message || run.error;
  if (message && !(end && end.interrupted)) summaryEl.append(h("p", { class: "card-error" }, message));
  if (outcome.errors) {
    summaryEl.append(
      h(
        "ul",
        { class: "error-list" },
        outcome.errors.map((e) => h("li", null, h("code", null, e.path || "flow"), " ", e.message, e.hint ? ` — ${e.hint}` : "")),
      ),
    );
  }
}

btnAgain.addEventListener("click", () => {
  const run = current;
  if (!run || !run.config) return;
  startRun(run.config, run.options);
});

btnLog.addEventListener("click", () => {
  const run = current;
  if (!run) return;
  if (run.readOnly) {
    downloadJson(`${run.id}.json`, run.record);
    return;
  }
  const name = (run.config.name || "flow").replace(/[^A-Za-z0-9_.-]+/g, "-");
  downloadJson(`${name}-${run.id || "run"}.json`, {
    executionId: run.id,
    flowName: run.config.name,
    startedAt: run.startedAt,
    options: run.options,
    result: run.end && { ...run.end, executionLog: undefined },
    executionLog: run.end ? run.end.executionLog : [],
    events: run.events.map((e) => ({ event: e.event, data: e.event === "end" ? { ...e.data, executionLog: undefined } : e.data })),
  });
});

btnClose.addEventListener("click", () => panel.close());

// ---- history (read-only) ---------------------------------------------------------

export function showExecution(record) {
  current = { readOnly: true, ended: true, id: record.id || record.executionId, record, config: null };
  resetPanel(`History: ${record.flowName || record.flow || "flow"}`);
  metaEl.textContent = current.id || "";
  btnInterrupt.hidden = true;
  btnAgain.hidden = true;
  btnLog.hidden = false;
  btnClose.hidden = false;
  const steps = record.steps || [];
  const total = record.totalSteps ?? steps.length;
  const done = steps.filter((s) => s.status !== "not_run").length;
  progressText.textContent = `${done} / ${total} steps · read-only`;
  progressBar.style.width = total ? `${(100 * done) / total}%` : "0";
  for (const rec of steps) prepend(stepCard(rec, { readOnly: true }));
  const status = record.status || "completed";
  const kind = { completed: "success", failed: "failure", interrupted: "interrupted", running: "running" }[status] || "";
  setPill(status[0].toUpperCase() + status.slice(1), kind);
  progressBar.parentElement.className = `progress ended ${kind}`;
  clear(summaryEl);
  summaryEl.hidden = false;
  summaryEl.className = `summary ${kind}`;
  summaryEl.append(h("h3", null, `${record.flowName || "Flow"}: ${status}`));
  const started = record.startedAt || record.started_at;
  if (started) summaryEl.append(h("p", { class: "muted" }, `Started ${new Date(started).toLocaleString()}`));
  const count = (s) => steps.filter((r) => r.status === s).length;
  summaryEl.append(
    h(
      "div",
      { class: "stats" },
      stat("executed", count("completed") + count("failed")),
      stat("skipped", count("skipped")),
      stat("failed", count("failed"), count("failed") ? "bad" : ""),
      stat("not run", count("not_run")),
      typeof record.summary?.duration === "number" ? stat("total time", formatDuration(record.summary.duration)) : null,
    ),
  );
  openPanel();
  btnClose.focus();
}
