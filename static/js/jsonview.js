// The JSON view: the whole flow as text, bound to the root path of the store. Text
// that does not parse is a draft of the root: kept as typed (the form waits and Save
// refuses) until it parses. While fields of the form hold drafts, the JSON is
// read-only: applying it would replace what they hold.

import { $, $$, h } from "./dom.js";
import { reveal } from "./editor.js";
import { draftList, savePref, setDraft, setValue, store } from "./state.js";
import { equal } from "./store.js";

const views = $("#editor-views");
const text = $("#json-text");
const error = $("#json-error");
const note = $("#json-note");

function parse(t) {
  try {
    return JSON.parse(t);
  } catch (e) {
    throw new Error(`Not valid JSON: ${e.message}`);
  }
}

export function setView(view) {
  store.update("ui", (ui) => ({ ...ui, view }));
}

function draw(s) {
  const view = s.ui.view;
  views.dataset.view = view;
  for (const tab of $$('[role="tab"][data-view]')) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  if (view === "form") return;
  const draft = s.drafts[""];
  let keep = false;
  if (document.activeElement === text && !draft) {
    try {
      keep = equal(parse(text.value), s.flow);
    } catch {
      keep = false;
    }
  }
  if (!keep) {
    const want = draft ? draft.raw : s.flow ? JSON.stringify(s.flow, null, 2) : "";
    if (text.value !== want) text.value = want;
  }
  error.hidden = !draft;
  error.textContent = draft ? draft.error : "";
  if (draft) text.setAttribute("aria-invalid", "true");
  else text.removeAttribute("aria-invalid");
  const fields = draftList(s).filter((d) => d.path !== "");
  text.readOnly = fields.length > 0;
  note.hidden = !fields.length;
  note.replaceChildren(
    ...(fields.length
      ? [
          h("span", null, "Read-only while these fields hold text that is not valid yet (it is not in this JSON): "),
          ...fields.map((f, i) => [
            i ? ", " : "",
            h("button", { type: "button", class: "link-btn", onclick: () => goTo(f.path) }, f.label),
          ]).flat(),
        ]
      : []),
  );
}

function goTo(path) {
  if (store.get().ui.view === "json") setView("split");
  reveal(path);
}

export function initJsonView() {
  text.addEventListener("input", () => {
    let value;
    try {
      value = parse(text.value);
    } catch (e) {
      setDraft("", text.value, e.message, { origin: text });
      return;
    }
    setValue("", value, { origin: text, label: "JSON edit" });
  });
  for (const tab of $$('[role="tab"][data-view]')) tab.addEventListener("click", () => setView(tab.dataset.view));
  document.addEventListener("flowrun:view", (e) => {
    setView(e.detail === "json" && store.get().ui.view === "form" ? "json" : e.detail);
    text.focus();
  });
  store.subscribe((s, prev) => {
    if (s.ui.view !== prev.ui.view) savePref("view", s.ui.view);
    if (s.flow !== prev.flow || s.drafts !== prev.drafts || s.ui.view !== prev.ui.view) draw(s);
  });
  draw(store.get());
}
