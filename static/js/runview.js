// RunView: draws one run model (runmodel.js) — the docked live run, a run in
// History, and each side of a comparison are instances of it. Cards are kept per
// step index and replaced only when that step's entry changes, and the card the
// person is reading stays where it is when others arrive.

import { inputCard, notRunCard, runningCard, stepCard } from "./cards.js";
import { clear, formatDuration, h } from "./dom.js";
import { counts, duration, notes, pill, title } from "./runmodel.js";

// A "Running…" placeholder appears only if a step's result is this late.
const PLACEHOLDER_DELAY_MS = 800;

let viewSeq = 0;

function stat(label, value, cls) {
  return h("div", { class: `stat ${cls || ""}` }, h("span", { class: "stat-value" }, String(value)), h("span", { class: "stat-label" }, label));
}

export class RunView {
  // opts: {label, heading(model), actions: Element[], order, compact, failedOnly,
  //        onEditStep(rec), onAnswer(), onOptions(opts), secrets(): Set, tools: bool}
  constructor(opts = {}) {
    this.opts = opts;
    this.n = ++viewSeq;
    this.model = null;
    this.cards = new Map(); // stepIndex -> {entry, el, late}
    this.open = new Set(); // compact mode: steps opened by the person
    this.order = opts.order || "oldest";
    this.compact = Boolean(opts.compact);
    this.failedOnly = Boolean(opts.failedOnly);
    this.timer = null;

    this.heading = h("h2", { class: "rv-heading", id: `rv-title-${this.n}` });
    this.pill = h("span", { class: "pill" });
    this.meta = h("span", { class: "rv-meta" });
    this.actions = h("div", { class: "rv-actions" }, opts.actions || []);
    this.bar = h("div", { class: "progress-bar" });
    this.progress = h("div", { class: "progress", "aria-hidden": "true" }, this.bar);
    this.progressText = h("span", { class: "progress-text", role: "status" });
    this.slot = h("div", { class: "rv-slot" });
    this.summary = h("section", { class: "summary", hidden: true, "aria-live": "polite", "aria-label": "Summary" });
    this.list = h("div", { class: "cards", role: "list", "aria-label": "Steps" });
    this.empty = h("p", { class: "muted rv-empty", hidden: true }, "No failed steps.");
    // Room below the list, so that the card being read can stay put while new
    // ones arrive above it even when the list is short.
    this.pad = h("div", { class: "rv-pad", "aria-hidden": "true" });
    this.body = h("div", { class: "rv-body" }, this.summary, this.empty, this.list, this.pad);
    this.tools = opts.tools === false ? null : this.buildTools();
    this.el = h(
      "section",
      { class: "runview", "aria-labelledby": this.heading.id },
      h("header", { class: "rv-head" }, h("div", { class: "rv-title" }, this.heading, this.pill), this.actions),
      this.progress,
      h("div", { class: "rv-sub" }, this.progressText, this.meta, this.slot, this.tools),
      this.body,
    );
    this.applyOptions();
    // The person reading a card: from then on arriving cards keep it in place.
    this.touched = false;
    this.body.addEventListener("toggle", () => (this.touched = true), true);
    this.body.addEventListener("scroll", () => {
      if (this.body.scrollTop > 0) this.touched = true;
    });
  }

  buildTools() {
    const id = (s) => `rv${this.n}-${s}`;
    this.orderSel = h(
      "select",
      { id: id("order"), "aria-label": "Step order" },
      h("option", { value: "oldest" }, "Oldest first"),
      h("option", { value: "newest" }, "Newest first"),
    );
    this.orderSel.value = this.order;
    this.orderSel.addEventListener("change", () => this.setOptions({ order: this.orderSel.value }));
    this.compactBox = h("input", { type: "checkbox", id: id("compact") });
    this.compactBox.checked = this.compact;
    this.compactBox.addEventListener("change", () => this.setOptions({ compact: this.compactBox.checked }));
    this.failedBox = h("input", { type: "checkbox", id: id("failed") });
    this.failedBox.checked = this.failedOnly;
    this.failedBox.addEventListener("change", () => this.setOptions({ failedOnly: this.failedBox.checked }));
    this.jump = h("select", { id: id("jump"), "aria-label": "Jump to step" }, h("option", { value: "" }, "Jump to step…"));
    this.jump.addEventListener("change", () => {
      const index = this.jump.value;
      this.jump.value = "";
      if (index !== "") this.focusStep(Number(index));
    });
    return h(
      "div",
      { class: "rv-tools", role: "group", "aria-label": "Step list options" },
      this.orderSel,
      h("label", { class: "check", for: id("compact") }, this.compactBox, "Compact"),
      h("label", { class: "check", for: id("failed") }, this.failedBox, "Failed only"),
      this.jump,
    );
  }

  setOptions(partial) {
    if (partial.order) this.order = partial.order;
    if ("compact" in partial) this.compact = partial.compact;
    if ("failedOnly" in partial) this.failedOnly = partial.failedOnly;
    this.applyOptions();
    if (this.opts.onOptions) this.opts.onOptions({ order: this.order, compact: this.compact, failedOnly: this.failedOnly });
    if (this.model) this.render(this.model, { reorder: true });
  }

  applyOptions() {
    // The summary comes where the newest things arrive: after the last step when
    // the oldest is first, at the top otherwise.
    if (this.order === "oldest") this.body.insertBefore(this.summary, this.pad);
    else this.body.prepend(this.summary);
    this.el.classList.toggle("compact", this.compact);
    this.el.classList.toggle("failed-only", this.failedOnly);
    if (this.orderSel) this.orderSel.value = this.order;
    if (this.compactBox) this.compactBox.checked = this.compact;
    if (this.failedBox) this.failedBox.checked = this.failedOnly;
  }

  focusStep(index) {
    const card = this.cards.get(index);
    if (!card) return;
    if (this.failedOnly && card.el.dataset.status !== "failed") this.setOptions({ failedOnly: false });
    if (this.compact) this.toggleOpen(index, true);
    card.el.scrollIntoView({ block: "start" });
    card.el.focus();
  }

  toggleOpen(index, force) {
    const open = force ?? !this.open.has(index);
    if (open) this.open.add(index);
    else this.open.delete(index);
    const card = this.cards.get(index);
    if (card) {
      card.el.classList.toggle("open", open);
      card.el.querySelector(".card-toggle")?.setAttribute("aria-expanded", String(open));
    }
  }

  // The element a step entry draws as (null: nothing to show yet).
  cardFor(index, entry) {
    const secrets = this.opts.secrets ? this.opts.secrets() : null;
    let el;
    if (entry.record) {
      el = entry.status === "not_run" ? notRunCard(notRunNote(this.model, entry.record)) : stepCard(entry.record, { secrets, readOnly: this.model.readOnly });
    } else if (entry.status === "input") {
      el = inputCard(entry.info, () => this.opts.onAnswer && this.opts.onAnswer());
    } else if (entry.status === "running") {
      if (Date.now() - entry.at < PLACEHOLDER_DELAY_MS) return null;
      el = runningCard(entry.info);
    } else return null;
    el.tabIndex = -1;
    const head = el.querySelector(".card-head");
    head.prepend(
      h(
        "button",
        {
          type: "button",
          class: "card-toggle",
          "aria-expanded": String(this.open.has(index)),
          "aria-label": `Details of step ${index + 1}`,
          onclick: () => this.toggleOpen(index),
        },
        h("span", { "aria-hidden": "true" }, "▸"),
      ),
    );
    el.classList.toggle("open", this.open.has(index));
    const rec = entry.record || entry.info;
    if (this.opts.onEditStep && rec && rec.id) {
      let actions = el.querySelector(".card-actions");
      if (!actions) {
        actions = h("div", { class: "card-actions" });
        el.append(actions);
      }
      actions.append(
        h("button", { type: "button", class: "btn small ghost", onclick: () => this.opts.onEditStep(rec) }, "Edit this step"),
      );
    }
    return el;
  }

  // The card being read: the first that starts inside the view (a card cut off at
  // the top may be a placeholder about to be replaced), else the first in view.
  captureAnchor() {
    if (!this.touched) return null;
    const view = this.body.getBoundingClientRect();
    let partly = null;
    for (const el of [this.summary, ...this.list.children]) {
      if (el.hidden) continue;
      const r = el.getBoundingClientRect();
      if (r.bottom <= view.top + 1 || r.top >= view.bottom) continue;
      const index = el === this.summary ? "summary" : Number(el.dataset.stepIndex);
      if (r.top >= view.top - 1) return { el, index, top: r.top };
      partly = partly || { el, index, top: r.top };
    }
    return partly;
  }

  render(model, { reorder = false } = {}) {
    const prev = this.model;
    this.model = model;
    clearTimeout(this.timer);
    this.timer = null;
    if (!prev || prev.id !== model.id || (prev.readOnly !== model.readOnly && !model.readOnly)) {
      // Another run: start from an empty list, scrolled to the top.
      for (const { el } of this.cards.values()) el.remove();
      this.cards.clear();
      this.open.clear();
      this.touched = false;
      this.body.scrollTop = 0;
      this.pad.style.height = "0";
    }
    const anchor = this.captureAnchor();
    const summaryBefore = this.summaryKey;
    this.renderHead(model);
    const wanted = [];
    let late = Infinity;
    model.steps.forEach((entry, index) => {
      if (!entry) return;
      if (entry.status === "running" && !entry.record) {
        const wait = PLACEHOLDER_DELAY_MS - (Date.now() - entry.at);
        if (wait > 0) late = Math.min(late, wait);
      }
      wanted.push(index);
    });
    let changed = reorder;
    for (const [index, card] of this.cards) {
      if (!model.steps[index]) {
        card.el.remove();
        this.cards.delete(index);
        changed = true;
      }
    }
    for (const index of wanted) {
      const entry = model.steps[index];
      const have = this.cards.get(index);
      if (have && have.entry === entry) continue;
      const el = this.cardFor(index, entry);
      if (!el) {
        if (have) {
          have.el.remove();
          this.cards.delete(index);
        }
        continue;
      }
      if (have) have.el.replaceWith(el);
      this.cards.set(index, { entry, el });
      changed = true;
    }
    if (changed) {
      const ordered = [...this.cards.keys()].sort((a, b) => (this.order === "newest" ? b - a : a - b));
      let before = this.list.firstChild;
      for (const index of ordered) {
        const el = this.cards.get(index).el;
        // Only elements out of place move: a moved element loses focus.
        if (el !== before) this.list.insertBefore(el, before);
        before = el.nextSibling;
      }
    }
    const anchorEl = anchor && (anchor.el.isConnected ? anchor.el : this.cards.get(anchor.index)?.el);
    if (anchorEl) {
      const delta = anchorEl.getBoundingClientRect().top - anchor.top;
      const want = this.body.scrollTop + delta;
      const room = this.body.scrollHeight - this.body.clientHeight;
      if (want > room) this.pad.style.height = `${this.pad.offsetHeight + want - room}px`;
      this.body.scrollTop = want;
    } else if ((changed || summaryBefore !== this.summaryKey) && this.order === "oldest" && !model.readOnly && this.following()) {
      this.body.scrollTop = this.body.scrollHeight;
    }
    this.empty.hidden = !(this.failedOnly && ![...this.cards.values()].some((c) => c.el.dataset.status === "failed"));
    this.renderJump();
    if (late !== Infinity) this.timer = setTimeout(() => this.render(this.model), late + 5);
  }

  // Oldest first, the live end of the list is the bottom: follow it unless the person
  // has scrolled up to read.
  following() {
    return !this.touched || this.body.scrollHeight - this.body.clientHeight - this.body.scrollTop < 60;
  }

  renderHead(model) {
    this.heading.textContent = this.opts.heading ? this.opts.heading(model) : `Run: ${model.flowName || "flow"}`;
    const p = pill(model);
    this.pill.textContent = p.text;
    this.pill.className = `pill ${p.kind}`;
    this.meta.textContent = [model.id, model.environment ? `environment ${model.environment}` : null].filter(Boolean).join(" · ");
    const c = counts(model);
    const total = model.total || 0;
    const done = Math.min(c.done, total || c.done);
    this.progressText.textContent = `${done} / ${total} steps`;
    this.bar.style.width = total ? `${(100 * done) / total}%` : "0";
    this.progress.className = `progress${model.phase === "ended" ? ` ended ${p.kind}` : ""}`;
    this.renderSummary(model, c, p);
  }

  renderSummary(model, c, p) {
    const text = title(model);
    const show = model.phase === "ended" || model.phase === "lost";
    this.summary.hidden = !show;
    if (!show) return;
    const key = JSON.stringify([model.id, model.startedAt, text, c, model.outcome, model.error, model.end && model.end.duration, model.phase]);
    if (this.summaryKey === key) return;
    this.summaryKey = key;
    clear(this.summary);
    this.summary.className = `summary ${model.phase === "lost" ? "interrupted" : p.kind}`;
    this.summary.append(h("h3", null, text));
    if (model.phase === "lost") {
      this.summary.append(
        h("p", null, "The connection to the flowrun server was lost. Studio is waiting for it and will show how the run ended."),
      );
      return;
    }
    if (model.startedAt) this.summary.append(h("p", { class: "muted rv-started" }, `Started ${new Date(model.startedAt).toLocaleString()}`));
    if (model.outcome !== "invalid" && model.outcome !== "unreachable") {
      const d = duration(model);
      this.summary.append(
        h(
          "div",
          { class: "stats" },
          stat("executed", c.executed),
          stat("skipped", c.skipped),
          stat("failed", c.failed, c.failed ? "bad" : ""),
          stat("not run", c.notRun),
          stat("total time", d === null ? "—" : formatDuration(d)),
        ),
      );
    }
    for (const line of notes(model)) {
      this.summary.append(h("p", { class: line.startsWith("Not run") ? "muted" : model.outcome === "failed" || model.outcome === "invalid" || model.outcome === "unreachable" ? "card-error" : "" }, line));
    }
    if (model.errors && model.errors.length) {
      this.summary.append(
        h("ul", { class: "error-list" }, model.errors.map((e) => h("li", null, h("code", null, e.path || "flow"), " ", e.message, e.hint ? ` — ${e.hint}` : ""))),
      );
    }
  }

  renderJump() {
    if (!this.jump) return;
    const items = [...this.cards.keys()].sort((a, b) => a - b);
    const key = items.join(",");
    if (this.jumpKey === key) return;
    this.jumpKey = key;
    while (this.jump.options.length > 1) this.jump.remove(1);
    for (const index of items) {
      const entry = this.model.steps[index];
      const rec = entry.record || entry.info || {};
      this.jump.append(h("option", { value: String(index) }, `#${index + 1} ${rec.name || rec.id || ""}`));
    }
  }

  destroy() {
    clearTimeout(this.timer);
    this.el.remove();
  }
}

function notRunNote(model, rec) {
  if (rec.note) return rec;
  const note =
    model.outcome === "interrupted" ? "Not started: the flow was interrupted." : "Not started: the flow stopped early.";
  return { ...rec, note };
}
