// Unsaved work is kept in this browser (local storage) as it is made, drafts
// included, so a reload, a crash or a closed tab loses nothing: opening the flow
// again offers it back.

import { $, debounce, h } from "./dom.js";
import { isDirty, store } from "./state.js";

const PREFIX = "flowrun.draft:";
const NEW = "~unsaved";
const banner = $("#restore-banner");

const keyOf = (file) => PREFIX + (file || NEW);

export function readDraft(file) {
  try {
    const raw = localStorage.getItem(keyOf(file));
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function forgetDraft(file) {
  try {
    localStorage.removeItem(keyOf(file));
  } catch {
    /* storage unavailable */
  }
}

// The open flow and drafts whose unsaved work the person discarded: a write still
// pending for them (or the page going) must not keep them again; an edit may.
let dropped = null;

// The person discarded the open flow's unsaved work: it is gone for good.
export function dropDraft() {
  const s = store.get();
  dropped = { flow: s.flow, drafts: s.drafts };
  forgetDraft(s.file);
}

function write(s) {
  if (!s.flow) return;
  if (dropped && s.flow === dropped.flow && s.drafts === dropped.drafts) return;
  try {
    if (isDirty(s)) {
      localStorage.setItem(keyOf(s.file), JSON.stringify({ file: s.file, flow: s.flow, drafts: s.drafts, saved: s.saved, at: Date.now() }));
    } else forgetDraft(s.file);
  } catch {
    /* full or unavailable: the unsaved marker and the leave guard still warn */
  }
}

const writeSoon = debounce(() => write(store.get()), 300);

// Offer a kept draft back. `current` is the flow as the server has it (null for a
// flow never saved). Resolves once the person chose (or there was nothing to offer).
export function offerDraft(file, current) {
  const kept = readDraft(file);
  hideBanner();
  if (!kept || !kept.flow) return;
  const same = JSON.stringify(kept.flow) === JSON.stringify(current) && !Object.keys(kept.drafts || {}).length;
  if (same) {
    forgetDraft(file);
    return;
  }
  const when = new Date(kept.at).toLocaleString();
  const name = file ? `${file}.json` : `the unsaved flow “${kept.flow.name || "untitled"}”`;
  const changedSince = file && kept.saved !== null && current && kept.saved !== JSON.stringify(current);
  banner.replaceChildren(
    h(
      "p",
      null,
      `Unsaved changes to ${name} from ${when} were kept in this browser.`,
      changedSince ? " The file has changed since: restoring puts your version in the editor, and saving it replaces the file." : "",
    ),
    h(
      "div",
      { class: "banner-actions" },
      h("button", { type: "button", class: "btn small primary", onclick: () => restore(kept, current) }, "Restore"),
      h("button", { type: "button", class: "btn small", onclick: () => discard(file) }, "Discard them"),
    ),
  );
  banner.hidden = false;
}

function restore(kept, current) {
  hideBanner();
  store.load({ flow: kept.flow, drafts: kept.drafts || {}, file: kept.file || null, saved: current ? JSON.stringify(current) : null });
  document.dispatchEvent(new CustomEvent("flowrun:restored"));
}

function discard(file) {
  forgetDraft(file);
  hideBanner();
}

export function hideBanner() {
  banner.hidden = true;
  banner.replaceChildren();
}

export function initAutosave() {
  store.subscribe((s, prev) => {
    if (s.flow !== prev.flow || s.drafts !== prev.drafts || s.saved !== prev.saved || s.file !== prev.file) writeSoon();
  });
  // The last word before the page goes: nothing waits for the timer.
  window.addEventListener("pagehide", () => write(store.get()));
}
