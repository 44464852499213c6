// One model of a run, whatever it comes from: runReducer(model, event) folds the
// live SSE events (and a few local ones: a stop asked, the connection lost) into it,
// fromRecord(record) builds it from a stored execution. RunView draws either, so a
// run reads the same live, in History, and side by side in a comparison.
//
// model: {id, flowName, environment, startedAt, total, nodes, phase, outcome, steps,
//         end, error, errors, prompt, pause, stopAt, forcing, readOnly, continueOnFailure}
//  phase:   starting | running | input | paused | stopping | lost | ended
//  outcome: completed | failed | interrupted | invalid | unreachable | running (a stored
//           run still going) | null while live
//  steps[stepIndex]: {status, record?, info?, at?} — status completed | failed |
//           skipped | not_run | running | input

function nodeInfo(n, i) {
  const node = n && typeof n === "object" ? n : {};
  return {
    step: i + 1,
    stepIndex: i,
    id: node.id,
    name: node.name,
    method: String(node.method || "GET").toUpperCase(),
    url: node.url || "",
  };
}

export function newRun({ config = {}, options = {} } = {}) {
  const nodes = (Array.isArray(config.nodes) ? config.nodes : []).map(nodeInfo);
  return {
    id: null,
    flowName: config.name || "",
    environment: options.environment || null,
    startedAt: null,
    total: nodes.length,
    nodes,
    phase: "starting",
    outcome: null,
    steps: [],
    end: null,
    error: null,
    errors: null,
    prompt: null,
    pause: null,
    stopAt: null,
    forcing: false,
    readOnly: false,
    continueOnFailure: Boolean(options.continueOnFailure),
  };
}

function withStep(model, index, entry) {
  const steps = model.steps.slice();
  steps[index] = entry;
  return { ...model, steps };
}

const live = (model, phase) => (model.phase === "stopping" ? "stopping" : phase);

function outcomeOf(end) {
  if (!end) return null;
  if (end.interrupted) return "interrupted";
  return end.success ? "completed" : "failed";
}

function notRunRecord(model, id) {
  const index = model.nodes.findIndex((n) => n.id === id);
  const info = model.nodes[index] || { id, step: null, stepIndex: null };
  return { ...info, status: "not_run" };
}

export function runReducer(model, { event, data = {}, at = 0 }) {
  if (model.phase === "ended" && event !== "record") return model;
  if (data.executionId && model.id && data.executionId !== model.id) return model; // another run's
  switch (event) {
    case "start":
      return {
        ...model,
        id: model.id || data.executionId || null,
        total: data.totalSteps ?? model.total,
        flowName: data.flowName || model.flowName,
        startedAt: data.startedAt || model.startedAt,
        phase: live(model, "running"),
      };
    case "step_start": {
      const m = withStep(model, data.stepIndex, { status: "running", info: data, at });
      return { ...m, prompt: null, pause: null, phase: live(model, "running") };
    }
    case "input_required": {
      const m = withStep(model, data.stepIndex, { status: "input", info: data, at });
      return { ...m, prompt: data, pause: null, phase: live(model, "input") };
    }
    case "paused":
      return { ...model, pause: { ...data, at }, phase: live(model, "paused") };
    case "step": {
      const m = withStep(model, data.stepIndex, { status: data.status || "completed", record: data, at });
      const prompt = model.prompt && model.prompt.stepIndex === data.stepIndex ? null : model.prompt;
      return { ...m, prompt };
    }
    case "error":
      return { ...model, error: data.message || "Error" };
    case "end": {
      let m = { ...model, end: data, outcome: outcomeOf(data), phase: "ended", prompt: null, pause: null };
      // Steps that never reported (a prompt left waiting) are replaced by what the
      // end says of them; every step it lists as not run gets its own card.
      const steps = m.steps.map((s) => (s && (s.status === "running" || s.status === "input") ? null : s));
      for (const id of data.notRun || []) {
        const rec = notRunRecord(m, id);
        if (rec.stepIndex !== null) steps[rec.stepIndex] = { status: "not_run", record: rec };
      }
      m = { ...m, steps };
      return m;
    }
    // ---- local events ----
    case "stop_requested":
      return { ...model, phase: "stopping", stopAt: at, prompt: null, pause: null };
    case "force_requested":
      return { ...model, forcing: true };
    case "lost":
      return { ...model, phase: "lost" };
    case "resumed":
      return { ...model, phase: model.prompt ? "input" : "running" };
    case "invalid":
      return { ...model, phase: "ended", outcome: "invalid", error: data.message, errors: data.errors || [] };
    case "unreachable":
      return { ...model, phase: "ended", outcome: "unreachable", error: data.message };
    case "record": {
      // The server's record of this run (after the connection came back).
      const stored = fromRecord(data.record);
      // Steps the record could not name, this page can (it has the flow).
      const steps = stored.steps.map((st, i) =>
        st && st.status === "not_run" && st.record.note && model.nodes[i] ? { ...st, record: { ...st.record, ...model.nodes[i], status: "not_run" } } : st,
      );
      return { ...stored, steps, readOnly: model.readOnly, nodes: model.nodes.length ? model.nodes : stored.nodes, continueOnFailure: model.continueOnFailure };
    }
    default:
      return model;
  }
}

export function fromRecord(record) {
  const steps = [];
  for (const rec of record.steps || []) {
    if (typeof rec.stepIndex === "number") steps[rec.stepIndex] = { status: rec.status || "completed", record: rec };
  }
  const status = record.status || "completed";
  // A run whose process died recorded no "not run" steps: the steps it never
  // reported are not run all the same, and counted as such.
  if (status !== "running") {
    for (let i = 0; i < (record.totalSteps || 0); i++) {
      if (!steps[i]) steps[i] = { status: "not_run", record: { step: i + 1, stepIndex: i, status: "not_run", id: `#${i + 1}`, name: `Step ${i + 1}`, note: "Not recorded: the run ended before this step." } };
    }
  }
  const nodes = steps.filter(Boolean).map((s) => nodeInfo(s.record, s.record.stepIndex));
  return {
    ...newRun(),
    id: record.executionId || record.id || null,
    flowName: record.flowName || "",
    environment: record.environment || null,
    startedAt: record.startedAt || null,
    total: record.totalSteps ?? steps.length,
    nodes,
    phase: status === "running" ? "running" : "ended",
    outcome: status,
    steps,
    end: record.summary || null,
    readOnly: true,
  };
}

// ---- what both views derive from a model ---------------------------------------

export function counts(model) {
  const c = { executed: 0, skipped: 0, failed: 0, notRun: 0, done: 0 };
  for (const s of model.steps) {
    if (!s || !s.record) continue;
    if (s.status === "completed" || s.status === "failed") c.executed += 1;
    if (s.status === "failed") c.failed += 1;
    if (s.status === "skipped") c.skipped += 1;
    if (s.status === "not_run") c.notRun += 1;
    else c.done += 1;
  }
  return c;
}

export function duration(model) {
  const d = model.end && model.end.duration;
  return typeof d === "number" ? d : null;
}

const TITLES = {
  completed: "Flow completed",
  failed: "Flow failed",
  interrupted: "Flow interrupted",
  invalid: "The flow is not valid",
  unreachable: "The run could not start",
  running: "Still running",
};

export function title(model) {
  if (model.phase === "lost") return "Connection lost";
  return TITLES[model.outcome] || "";
}

// The word in the state pill, and its colour.
export function pill(model) {
  if (model.phase === "ended") {
    const kind = { completed: "success", interrupted: "interrupted", running: "running" }[model.outcome] || "failure";
    const text = { completed: "Completed", interrupted: "Interrupted", running: "Running" }[model.outcome] || "Failed";
    return { text, kind };
  }
  return (
    {
      starting: { text: "Starting…", kind: "running" },
      running: { text: "Running", kind: "running" },
      input: { text: "Waiting for input", kind: "input" },
      paused: { text: "Paused", kind: "paused" },
      stopping: { text: "Interrupting", kind: "stopping" },
      lost: { text: "Reconnecting…", kind: "stopping" },
    }[model.phase] || { text: "", kind: "" }
  );
}

// Sentences under the summary's title: the same for a live run and its record.
export function notes(model) {
  const out = [];
  if (model.outcome === "interrupted") {
    const reason = model.end && model.end.reason;
    out.push(reason ? `Interrupted: ${reason}.` : "Interrupted on request: no step started after the stop.");
  }
  if (model.outcome === "failed") {
    const failed = model.steps.find((s) => s && s.status === "failed");
    if (failed) {
      const r = failed.record;
      const why = r.error || (r.validations || []).filter((v) => !v.passed).map((v) => v.message).join("; ");
      out.push(`Step #${r.step} (${r.name || r.id}) failed${why ? `: ${why}` : ""}.`);
    } else if (model.error) out.push(model.error);
  }
  if ((model.outcome === "invalid" || model.outcome === "unreachable") && model.error) out.push(model.error);
  const notRun = model.steps.filter((s) => s && s.status === "not_run").map((s) => s.record.id);
  if (notRun.length) out.push(`Not run: ${notRun.join(", ")}`);
  return out;
}

// Nothing is left to interrupt once the last step reported, or a failure ended it.
export function closing(model) {
  const c = counts(model);
  if (model.total && c.done >= model.total) return true;
  return !model.continueOnFailure && c.failed > 0;
}
