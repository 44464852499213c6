// The live run, docked beside (or under) the editor: owns the one current run,
// folds its events into the run model and hands the model to a RunView. Also
// steers it: prompts, step mode, interrupt (and Stop now), Flow once again, and a
// connection lost mid-run, recovered from the server's record.

import { api, ApiError, isConflict } from "./api.js";
import { $, downloadJson, h, openTab, safeUrl, toast } from "./dom.js";
import { reveal } from "./editor.js";
import { setView } from "./jsonview.js";
import { closePrompt, openPrompt, promptEvent, promptOpen, showPromptError } from "./prompt.js";
import { closing, newRun, pill, runReducer, title } from "./runmodel.js";
import { RunView } from "./runview.js";
import { executeStream } from "./sse.js";
import { savePref, setKnown, store } from "./state.js";

// Stop now is offered once Interrupting the Flow... has waited this long.
const STOP_NOW_AFTER_MS = 3000;

const app = $("#app");
const dock = $("#run-dock");
const btnShowRun = $("#btn-show-run");
const showRunState = $("#show-run-state");

const btnInterrupt = h("button", { type: "button", class: "btn danger-solid", id: "btn-interrupt" }, "Interrupt the Flow");
const btnStopNow = h("button", { type: "button", class: "btn danger", id: "btn-stop-now", hidden: true, title: "Abort the request in flight" }, "Stop now");
const btnAgain = h("button", { type: "button", class: "btn primary", id: "btn-again", hidden: true }, "Flow once again");
const btnLog = h("button", { type: "button", class: "btn ghost", id: "btn-log", hidden: true }, "Download log");
const btnDock = h("button", { type: "button", class: "btn icon ghost", id: "btn-dock" });
const btnClose = h("button", { type: "button", class: "btn icon ghost", id: "btn-close-run", "aria-label": "Close run panel", title: "Close (the run goes on)" }, "✕");
const pauseText = h("span", { id: "pause-text" });
const btnContinue = h("button", { type: "button", class: "btn small primary", id: "btn-continue" }, "Continue");
const pauseBar = h("div", { class: "pause-bar", id: "pause-bar", hidden: true }, pauseText, btnContinue);

let model = null;
let run = null; // {config, options, events, stream, stopTimer, sending, recovering}
let countdown = null;

function secrets() {
  const env = store.get().env;
  const found = (env.list || []).find((e) => e.name === (model && model.environment));
  return new Set(found ? found.secrets || [] : []);
}

const view = new RunView({
  heading: (m) => `Run: ${m.flowName || "flow"}`,
  actions: [btnInterrupt, btnStopNow, btnAgain, btnLog, btnDock, btnClose],
  order: store.get().ui.order,
  compact: store.get().ui.compact,
  secrets,
  onOptions: ({ order, compact }) => {
    savePref("order", order);
    savePref("compact", compact ? "1" : "");
  },
  onAnswer: () => reopenPrompt(),
  onEditStep: (rec) => editStep(rec),
});
view.slot.append(pauseBar);
view.el.id = "run-view";
dock.append(view.el);

export const isRunning = () => Boolean(model && model.phase !== "ended" && !model.readOnly);
export const liveRunId = () => (isRunning() ? model.id : null);

// ---- the dock ----------------------------------------------------------------------

export function showDock() {
  store.update("ui", (ui) => ({ ...ui, runOpen: true }));
  if (model) model = { ...model, unseen: false };
  sync();
}

function hideDock() {
  store.update("ui", (ui) => ({ ...ui, runOpen: false }));
  sync();
  if (isRunning()) {
    toast(
      model.prompt ? "The flow is waiting for your input: Show run brings the prompt back." : "The flow keeps running: Show run brings it back.",
      "info",
    );
    btnShowRun.focus();
  } else $("#btn-run").focus();
}

function layout() {
  const ui = store.get().ui;
  app.dataset.run = ui.runOpen && model ? "open" : "closed";
  app.dataset.dock = ui.dock;
  dock.hidden = !(ui.runOpen && model);
  const beside = ui.dock === "beside";
  btnDock.textContent = beside ? "⬓" : "◨";
  btnDock.setAttribute("aria-label", beside ? "Dock the run under the editor" : "Dock the run beside the editor");
  btnDock.title = btnDock.getAttribute("aria-label");
}

btnDock.addEventListener("click", () => {
  const dockAt = store.get().ui.dock === "beside" ? "under" : "beside";
  savePref("dock", dockAt);
  store.update("ui", (ui) => ({ ...ui, dock: dockAt }));
  layout();
});
btnClose.addEventListener("click", hideDock);
// Escape inside the run view closes it (a live run goes on).
dock.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !e.defaultPrevented && !e.target.closest("select, input")) {
    e.preventDefault();
    hideDock();
  }
});

// Show run (and History's entry of the live run): the view as it is, with a
// waiting prompt ready to answer.
export function bringBack() {
  showDock();
  view.heading.tabIndex = -1;
  view.heading.focus();
  if (model && model.prompt && !promptOpen()) reopenPrompt();
}
btnShowRun.addEventListener("click", bringBack);

// ---- drawing -------------------------------------------------------------------------

function sync() {
  layout();
  if (!model) return;
  view.render(model);
  const live = !model.readOnly && model.phase !== "ended";
  const stopping = model.phase === "stopping";
  btnInterrupt.hidden = !live || model.phase === "lost";
  btnInterrupt.disabled = stopping;
  btnInterrupt.textContent = stopping ? "Interrupting the Flow..." : "Interrupt the Flow";
  const waited = stopping && model.stopAt && Date.now() - model.stopAt >= STOP_NOW_AFTER_MS;
  btnStopNow.hidden = !(stopping && waited);
  btnStopNow.disabled = model.forcing;
  btnStopNow.textContent = model.forcing ? "Stopping now…" : "Stop now";
  btnAgain.hidden = live || !run;
  btnLog.hidden = live || !model.end;
  // Pause bar: step mode and auto-step.
  clearInterval(countdown);
  const pause = model.phase === "paused" && model.pause;
  pauseBar.hidden = !pause;
  if (pause) {
    const node = model.nodes[pause.stepIndex];
    const label = `step #${pause.step}${node ? ` — ${node.name || node.id}` : ""}`;
    if (pause.resumeAt) {
      btnContinue.textContent = "Continue now";
      const tick = () => {
        const left = Math.max(0, pause.resumeAt - Date.now());
        pauseText.textContent = left ? `Auto-step: ${label} in ${(left / 1000).toFixed(1)} s` : `Auto-step: starting ${label}…`;
        // The server goes on by itself now: "Continue now" could only be refused.
        btnContinue.hidden = !left;
        if (!left) clearInterval(countdown);
      };
      tick();
      countdown = setInterval(tick, 100);
    } else {
      btnContinue.hidden = false;
      btnContinue.textContent = "Continue";
      pauseText.textContent = `Paused before ${label}`;
    }
  }
  const p = pill(model);
  const ui = store.get().ui;
  const show = !model.readOnly && !ui.runOpen && (live || model.unseen);
  btnShowRun.hidden = !show;
  showRunState.textContent = p.text;
  showRunState.className = `pill ${p.kind}`;
}

function apply(event, data = {}) {
  const before = model;
  model = runReducer(model, { event, data, at: Date.now() });
  if (model === before) return;
  if (run) run.events.push({ event, data });
  store.update("runs", (r) => ({ ...r, live: model }));
  sync();
}

// ---- starting ------------------------------------------------------------------------

export async function startRun(config, options = {}) {
  if (isRunning()) {
    showDock();
    return;
  }
  const mine = { config: structuredClone(config), options: structuredClone(options), events: [], stream: null };
  run = mine;
  model = newRun({ config, options });
  closePrompt();
  showDock();
  // Focus stays where the person is: a run started from the keyboard must not put
  // the next Enter on Interrupt.
  // Check first: an invalid flow is listed without a failed request (the 400 of
  // execute-stream would be logged as a console error).
  try {
    const check = await api.validate(config);
    if (run !== mine) return;
    if (check && check.valid === false) {
      apply("invalid", { message: "The server refused to start it: fix these problems first.", errors: check.errors || [] });
      return;
    }
  } catch (err) {
    if (run !== mine) return;
    if (err.unreachable) {
      apply("unreachable", { message: "Could not reach the flowrun server: is it running? Studio reconnects by itself; then run again." });
      return;
    }
  }
  try {
    const stream = await executeStream({ config, options }, (name, data) => {
      if (run === mine) onEvent(name, data);
    });
    if (run !== mine) return;
    mine.stream = stream;
    if (!model.id && stream.executionId) model = { ...model, id: stream.executionId };
    sync();
    if (mine.stopRequested) requestStop();
    await stream.done;
  } catch (err) {
    if (run !== mine) return;
    if (err instanceof ApiError && err.errors.length) apply("invalid", { message: err.message, errors: err.errors });
    else if (!model.id) apply("unreachable", { message: err.unreachable ? "Could not reach the flowrun server: is it running?" : err.message || String(err) });
    else lost();
    return;
  }
  if (run === mine && model.phase !== "ended") lost();
}

// ---- events ------------------------------------------------------------------------------

function onEvent(name, data) {
  if (!model || model.phase === "ended") return;
  // Events of any other execution are ignored.
  if (data.executionId && model.id && data.executionId !== model.id) return;
  if (!model.id && data.executionId) model = { ...model, id: data.executionId };
  const wasPrompt = model.prompt;
  apply(name, data);
  switch (name) {
    case "input_required":
      if (model.phase !== "stopping") {
        reopenPrompt();
        if (!store.get().ui.runOpen) toast(`Step #${data.step} is waiting for your input: Show run brings the prompt.`, "info");
      }
      break;
    case "step_start":
      // The step starts only once its prompt is answered: if this page did not send
      // the answer, someone else did, and answering again could only be refused.
      if (wasPrompt && wasPrompt.stepIndex === data.stepIndex) {
        if (!run.sending) toast(`The prompt of step #${data.step} was answered elsewhere.`, "info");
        closePrompt();
      }
      break;
    case "step":
      if (promptEvent() && promptEvent().stepIndex === data.stepIndex) closePrompt();
      if (data.response && data.response.body !== undefined) setKnown(data.id, data.response.body, data.response.headers);
      if (data.launchBrowser) {
        if (!safeUrl(data.launchBrowser)) toast("Not opened: only http(s) addresses open in a new tab.", "warn");
        else if (!openTab(data.launchBrowser)) toast("The browser blocked the new tab: use the link in the step card.", "warn");
      }
      break;
    case "end":
      finish();
      break;
    default:
      break;
  }
}

function finish() {
  clearTimeout(run && run.stopTimer);
  closePrompt();
  const ui = store.get().ui;
  model = { ...model, unseen: !ui.runOpen };
  sync();
  // The buttons that had focus are gone: the next thing to do takes it.
  const active = document.activeElement;
  if (active === btnInterrupt || active === btnStopNow || active === document.body) (btnAgain.hidden ? view.heading : btnAgain).focus();
  if (!ui.runOpen) toast(`${title(model)}: Show run has the details.`, "info");
}

// ---- a connection lost mid-run -------------------------------------------------------------

function lost() {
  apply("lost");
  closePrompt();
  const mine = run;
  let delay = 1500;
  const look = async () => {
    if (run !== mine || model.phase !== "lost") return;
    try {
      const record = await api.execution(model.id);
      if (run !== mine || model.phase !== "lost") return;
      if (record.status !== "running") {
        apply("record", { record });
        toast("The server is back: the run is shown as it recorded it.", "info");
        return;
      }
    } catch {
      /* still unreachable, or not recorded yet */
    }
    delay = Math.min(delay * 1.5, 10_000);
    mine.recovering = setTimeout(look, delay);
  };
  mine.recovering = setTimeout(look, delay);
  document.addEventListener("flowrun:online", () => {
    if (run !== mine) return;
    clearTimeout(mine.recovering);
    look();
  }, { once: true });
}

// ---- prompts ---------------------------------------------------------------------------

function reopenPrompt() {
  if (!model || !model.prompt || model.phase === "stopping" || model.phase === "ended") return;
  if (!store.get().ui.runOpen) showDock();
  const ev = model.prompt;
  const node = (run.config.nodes || [])[ev.stepIndex];
  openPrompt(ev, {
    flow: model.flowName,
    order: Object.keys((node && node.userPrompts) || {}),
    onSubmit: answer,
    onCancel: () => view.focusStep(ev.stepIndex),
  });
}

async function answer(values, ev) {
  const mine = run;
  if (!model || model.phase === "ended" || run.sending) return;
  run.sending = true; // a second Enter must not post the answer twice
  try {
    await api.provideInput(model.id, ev.stepIndex, values);
  } catch (err) {
    mine.sending = false;
    if (run !== mine || model.phase === "ended" || !model.prompt || model.prompt !== ev) return;
    if (isConflict(err)) {
      // Already answered (through another worker or client, or by an earlier try
      // whose reply was lost): the run has its answer, so this prompt is done.
      closePrompt();
      toast(`The prompt of step #${ev.step} was already answered.`, "info");
      return;
    }
    showPromptError(`Could not send the answer: ${err.message}`);
    return;
  }
  mine.sending = false;
  // The stream may have moved on while the answer was in flight: only close this
  // prompt, never a newer one.
  if (run === mine && promptEvent() === ev) closePrompt();
}

btnContinue.addEventListener("click", async () => {
  if (!model || model.phase !== "paused" || !model.id) return;
  pauseBar.hidden = true;
  clearInterval(countdown);
  try {
    await api.resume(model.id);
  } catch (err) {
    // 409: not paused any more (the auto-step delay ran out, or the run moved on
    // or ended meanwhile); the stream shows what happens next.
    if (!isConflict(err)) toast(`Continue failed: ${err.message}`, "error");
  }
});

// ---- interrupt ----------------------------------------------------------------------------

function interrupt() {
  if (!isRunning() || model.phase === "stopping") return;
  if (closing(model)) {
    // The last step has reported (or a failed one ended the run) and `end` is on
    // its way: the server would only answer 409.
    toast("Nothing left to interrupt: the flow has run its last step.", "info");
    return;
  }
  closePrompt();
  apply("stop_requested");
  btnInterrupt.focus();
  run.stopTimer = setTimeout(sync, STOP_NOW_AFTER_MS + 20);
  if (model.id) requestStop();
  else run.stopRequested = true; // sent as soon as the execution id is known
}

btnInterrupt.addEventListener("click", interrupt);
$("#prompt-interrupt").addEventListener("click", interrupt);

async function requestStop(force = false) {
  if (model.phase === "ended") return;
  try {
    await api.stop(model.id, force);
  } catch (err) {
    // 409: it finished meanwhile; the stream's `end` tells the rest.
    if (!isConflict(err)) toast(`Stop failed: ${err.message}`, "error");
  }
  // Keep reading: the in-flight step's result and `end` are still to come.
}

btnStopNow.addEventListener("click", () => {
  if (!model || model.phase !== "stopping" || model.forcing) return;
  apply("force_requested");
  requestStop(true);
});

// ---- the end --------------------------------------------------------------------------------

// Flow once again: the flow as the editor holds it now when it is the same flow
// (fixed since the run, say), else the flow as it was when the run started.
btnAgain.addEventListener("click", () => {
  if (!run) return;
  const current = store.get().flow;
  if (current && current.name === run.config.name) {
    document.dispatchEvent(new CustomEvent("flowrun:run", { detail: run.options.environment ? { environment: run.options.environment } : {} }));
  } else startRun(run.config, run.options);
});

btnLog.addEventListener("click", () => {
  if (!run || !model) return;
  const name = (run.config.name || "flow").replace(/[^A-Za-z0-9_.-]+/g, "-");
  const end = model.end || {};
  downloadJson(`${name}-${model.id || "run"}.json`, {
    executionId: model.id,
    flowName: run.config.name,
    startedAt: model.startedAt,
    options: run.options,
    result: { ...end, executionLog: undefined },
    executionLog: end.executionLog || [],
    events: run.events
      .filter((e) => !["stop_requested", "force_requested", "lost", "record"].includes(e.event))
      .map((e) => ({ event: e.event, data: e.event === "end" ? { ...e.data, executionLog: undefined } : e.data })),
  });
});

// "Edit this step": the step's card in the editor, opened at the field to fix.
function editStep(rec) {
  const nodes = (store.get().flow && store.get().flow.nodes) || [];
  const index = nodes.findIndex((n) => n && n.id === rec.id);
  if (index < 0) {
    toast(`The open flow has no step “${rec.id}”.`, "warn");
    return;
  }
  if (store.get().ui.view === "json") setView("split");
  // A phone shows the editor or the run: this goes to the editor.
  if (window.matchMedia("(max-width: 759px)").matches) store.update("ui", (ui) => ({ ...ui, runOpen: false }));
  reveal(`nodes[${index}].${fieldToFix(rec, nodes[index])}`);
}

// The field a step's result points at: the first failed check's expected value, the
// conditions of a skipped step, else the URL.
function fieldToFix(rec, node) {
  if (rec.status === "skipped") return "conditions";
  const failed = (rec.validations || []).find((v) => !v.passed);
  if (!failed) return "url";
  const checks = Array.isArray(node.validations) ? node.validations : [];
  const i = checks.findIndex((c) => {
    if (!c || typeof c !== "object") return false;
    if (failed.type === "httpStatusCode" || failed.type === "maxDurationMs") return failed.type in c;
    return c[failed.type] === failed.path && (!failed.operator || failed.operator in c);
  });
  if (i < 0) return "validations";
  return failed.operator ? `validations[${i}].${failed.operator}` : `validations[${i}]`;
}

store.subscribe((s, prev) => {
  if (s.ui.runOpen !== prev.ui.runOpen || s.ui.dock !== prev.ui.dock) layout();
});
layout();
