// The flows panel: workspace files (list, open, save, rename, delete, download),
// new flows from templates and imports. The last opened flow reopens on reload.

import { api, listOf } from "./api.js";
import { ask } from "./dialogs.js";
import { $, $$, clear, downloadJson, h, toast } from "./dom.js";
import { canonical, on, setDirty, setDoc, slug, state } from "./state.js";
import { template } from "./templates.js";

const LAST = "flowrun.lastFlow";
const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const list = $("#flow-list");
let files = [];

function remember(name) {
  try {
    if (name) localStorage.setItem(LAST, name);
    else localStorage.removeItem(LAST);
  } catch {
    /* ignore */
  }
}

function entryName(entry) {
  if (typeof entry === "string") return entry.replace(/\.json$/, "");
  return String(entry.name || entry.file || entry.id || "").replace(/\.json$/, "");
}

export async function refreshList() {
  try {
    files = listOf(await api.listFlows(), "flows");
  } catch (err) {
    files = [];
    toast(`Could not list flows: ${err.message}`, "error");
  }
  renderList();
  return files;
}

function renderList() {
  clear(list);
  if (!files.length) {
    list.append(h("li", { class: "empty" }, "No flows yet. Create one with + New."));
    return;
  }
  for (const entry of files) {
    const name = entryName(entry);
    const title = typeof entry === "object" ? entry.title || entry.flowName || entry.displayName : null;
    const nodes = typeof entry === "object" ? entry.nodes ?? entry.steps ?? entry.nodeCount : null;
    list.append(
      h(
        "li",
        null,
        h(
          "button",
          {
            type: "button",
            class: "flow-item",
            "data-name": name,
            onclick: () =>
              entry && entry.invalid
                ? toast(`${name}.json is not valid JSON: fix it in a text editor (Studio cannot open it).`, "error")
                : openFlow(name),
          },
          h("span", { class: "flow-item-name" }, title && title !== name ? title : name),
          h(
            "span",
            { class: "flow-item-file" },
            `${name}.json`,
            entry && entry.invalid
              ? h("span", { class: "flow-item-bad" }, " · not a valid flow")
              : typeof nodes === "number" && nodes > 0
                ? ` · ${nodes} step${nodes === 1 ? "" : "s"}`
                : "",
          ),
        ),
      ),
    );
  }
  markCurrent();
}

// Which file is open, marked on the buttons in place: a list drawn again as a
// flow opens would lose a click pressed on the old button and released on the new.
function markCurrent() {
  for (const button of $$(".flow-item", list)) {
    const current = button.dataset.name === state.file;
    button.classList.toggle("current", current);
    if (current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function confirmDiscard() {
  if (!state.dirty) return true;
  const ok = await ask({ heading: "Discard unsaved changes?", message: "The open flow has changes that are not saved.", okLabel: "Discard", danger: true });
  return Boolean(ok);
}

// Opens race (a click while the first flow loads): the latest request wins.
let openGeneration = 0;

export async function openFlow(name, { quiet = false } = {}) {
  if (!quiet && !(await confirmDiscard())) return false;
  const generation = ++openGeneration;
  const edits = state.edits;
  let doc;
  try {
    doc = await api.getFlow(name);
  } catch (err) {
    if (!quiet) toast(`Could not open ${name}: ${err.message}`, "error");
    return false;
  }
  if (generation !== openGeneration) return false;
  // Edited while the file loaded: those edits were not there to be discarded.
  if (state.edits !== edits) {
    if (!quiet && name !== state.file) toast(`Kept your changes: ${name}.json was not opened.`, "info");
    return false;
  }
  // Accept either the document itself or {"name", "flow"/"config"} wrappers.
  if (doc && !Array.isArray(doc.nodes) && (doc.flow || doc.config)) doc = doc.flow || doc.config;
  setDoc(canonical(doc), { file: name, dirty: false, source: "load" });
  remember(name);
  markCurrent();
  return true;
}

export async function save() {
  if (!state.doc) return false;
  let name = state.file;
  if (!name) {
    name = await ask({
      heading: "Save flow",
      label: "File name in the workspace",
      value: slug(state.doc.name),
      okLabel: "Save",
      validate: (v) => (NAME_RE.test(v) ? null : "Use letters, digits, '_', '-' and '.' only."),
    });
    if (!name) return false;
    name = name.replace(/\.json$/, "");
    if (files.map(entryName).includes(name)) {
      const replace = await ask({
        heading: `Replace ${name}.json?`,
        message: "A flow with this file name is already in the workspace.",
        okLabel: "Replace",
        danger: true,
      });
      if (!replace) return false;
    }
  }
  try {
    await api.saveFlow(name, state.doc);
  } catch (err) {
    toast(`Save failed: ${err.message}`, "error");
    return false;
  }
  state.file = name;
  remember(name);
  setDirty(false);
  toast(`Saved ${name}.json`, "success");
  await refreshList();
  return true;
}

async function rename() {
  if (!state.file) return save();
  const old = state.file;
  const name = await ask({
    heading: "Rename flow file",
    label: "New file name",
    value: old,
    okLabel: "Rename",
    validate: (v) => (NAME_RE.test(v) ? null : "Use letters, digits, '_', '-' and '.' only."),
  });
  if (!name || name === old) return false;
  if (files.map(entryName).includes(name)) {
    const replace = await ask({ heading: `Replace ${name}.json?`, message: "A flow with this file name is already in the workspace.", okLabel: "Replace", danger: true });
    if (!replace) return false;
  }
  try {
    await api.saveFlow(name, state.doc);
    await api.deleteFlow(old);
  } catch (err) {
    toast(`Rename failed: ${err.message}`, "error");
    return false;
  }
  state.file = name;
  remember(name);
  setDirty(false);
  toast(`Renamed to ${name}.json`, "success");
  await refreshList();
  return true;
}

async function remove() {
  if (!state.file) {
    toast("This flow is not saved in the workspace.", "info");
    return;
  }
  const name = state.file;
  const ok = await ask({ heading: `Delete ${name}.json?`, message: "The file is removed from the workspace.", okLabel: "Delete", danger: true });
  if (!ok) return;
  try {
    await api.deleteFlow(name);
  } catch (err) {
    toast(`Delete failed: ${err.message}`, "error");
    return;
  }
  remember(null);
  setDoc(template("empty"), { file: null, dirty: true, source: "load" });
  toast(`Deleted ${name}.json`, "success");
  await refreshList();
}

async function newFrom(kind) {
  if (!(await confirmDiscard())) return;
  openGeneration += 1; // a flow still loading must not replace this one
  setDoc(template(kind), { file: null, dirty: true, source: "load" });
  remember(null);
  markCurrent();
}

// A file: flowrun/FlowSphere JSON opens as is; a Postman collection goes through
// /api/import.
// A file's text: UTF-8, or UTF-16 when its byte-order mark says so (the mark dropped).
async function fileText(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let encoding = "utf-8";
  if (bytes[0] === 0xff && bytes[1] === 0xfe) encoding = "utf-16le";
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) encoding = "utf-16be";
  return new TextDecoder(encoding).decode(bytes);
}

async function importFile(file) {
  const textContent = await fileText(file);
  let doc = null;
  let summary = "";
  try {
    doc = JSON.parse(textContent);
  } catch (err) {
    // Not JSON: an OpenAPI document in YAML is the one other thing we take.
    if (!/^\s*(openapi|swagger)\s*:/m.test(textContent)) {
      toast(`${file.name} is not JSON: ${err.message}`, "error");
      return;
    }
  }
  const isPostman = doc && doc.info && (String(doc.info.schema || "").includes("postman") || Array.isArray(doc.item));
  const isOpenApi = !doc || Boolean(doc.openapi || doc.swagger);
  if (isPostman || isOpenApi) {
    try {
      const res = await api.importFlow(isPostman ? "postman" : "openapi", textContent);
      ({ doc, summary } = imported(res));
    } catch (err) {
      toast(`Import failed: ${err.message}`, "error");
      return;
    }
  } else if (!doc || typeof doc !== "object" || !Array.isArray(canonical(doc).nodes)) {
    toast(`${file.name} is not a flow (no "nodes" or "steps" list).`, "error");
    return;
  }
  if (!(await confirmDiscard())) return;
  openGeneration += 1; // a flow still loading must not replace this one
  setDoc(canonical(doc), { file: null, dirty: true, source: "load" });
  remember(null);
  markCurrent();
  toast(`Imported ${file.name}${summary}: save it to keep it in the workspace`, "success");
}

// /api/import answers the flow itself, with its report beside it in importReport
// (kept out of the flow): "12 requests: 9 as they were, 2 with notes, 1 skipped".
function imported(res) {
  const { importReport: report, ...doc } = res;
  if (!report) return { doc, summary: "" };
  const parts = [`${report.asIs} as they were`];
  if (report.withNotes) parts.push(`${report.withNotes} with notes`);
  if (report.skipped) parts.push(`${report.skipped} skipped by default`);
  if (report.leftOut) parts.push(`${report.leftOut} left out`);
  const noun = report.requests === 1 ? "request" : "requests";
  return { doc, summary: ` (${report.requests} ${noun}: ${parts.join(", ")})` };
}

async function importCurl() {
  const content = await ask({ heading: "Import from curl", label: "curl command", multiline: true, okLabel: "Import" });
  if (!content) return;
  try {
    const { doc } = imported(await api.importFlow("curl", content));
    if (!(await confirmDiscard())) return;
    openGeneration += 1; // a flow still loading must not replace this one
    setDoc(canonical(doc), { file: null, dirty: true, source: "load" });
    remember(null);
    markCurrent();
  } catch (err) {
    toast(`Import failed: ${err.message}`, "error");
  }
}

export function initFlows() {
  const menuBtn = $("#btn-new");
  const menu = $("#new-menu");
  const setMenu = (open) => {
    menu.hidden = !open;
    menuBtn.setAttribute("aria-expanded", String(open));
    if (open) menu.querySelector("button")?.focus();
  };
  menuBtn.addEventListener("click", () => setMenu(menu.hidden));
  menu.addEventListener("keydown", (e) => {
    const items = $$("button", menu);
    const i = items.indexOf(document.activeElement);
    if (e.key === "Escape") {
      setMenu(false);
      menuBtn.focus();
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      items[(i + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
    }
  });
  document.addEventListener("click", (e) => {
    if (!menu.hidden && !e.target.closest(".menu-wrap")) setMenu(false);
  });
  for (const item of $$("[data-template]", menu)) {
    item.addEventListener("click", () => {
      setMenu(false);
      newFrom(item.dataset.template);
    });
  }
  const fileInput = $("#import-file");
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (file) await importFile(file);
  });
  $("#btn-import-curl").addEventListener("click", importCurl);
  $("#btn-save").addEventListener("click", save);
  $("#btn-rename").addEventListener("click", rename);
  $("#btn-delete").addEventListener("click", remove);
  $("#btn-download").addEventListener("click", () => {
    if (state.doc) downloadJson(`${state.file || slug(state.doc.name)}.json`, state.doc);
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      save();
    }
  });
  // Leaving with unsaved edits asks first (a run in progress needs no guard: the
  // server stops it when the page goes away).
  window.addEventListener("beforeunload", (e) => {
    if (!state.dirty) return;
    e.preventDefault();
    e.returnValue = "";
  });
  const title = () => {
    $("#doc-file").textContent = state.file ? `${state.file}.json` : "unsaved flow";
  };
  on("dirty", (dirty) => {
    $("#dirty").hidden = !dirty;
    title();
  });
  on("doc", title);
}

// Reopen the last flow; else the first workspace flow; else a template.
export async function openInitial() {
  const before = openGeneration;
  const edits = state.edits;
  // Still ours to open: no opens but our own `expected` ones, no edits.
  const mine = (expected) => openGeneration === expected && state.edits === edits;
  await refreshList();
  if (!mine(before)) return;
  let last = null;
  try {
    last = localStorage.getItem(LAST);
  } catch {
    last = null;
  }
  const names = files.map(entryName);
  // Files the server already knows are broken are not tried first.
  const usable = names.filter((n, i) => !(files[i] && files[i].invalid));
  const tries = [...new Set([...(last && names.includes(last) ? [last] : []), ...usable])].slice(0, 5);
  let expected = before;
  for (const name of tries) {
    if (!mine(expected)) return;
    if (await openFlow(name, { quiet: true })) return;
    expected += 1;
  }
  if (!mine(expected)) return;
  if (!state.doc) setDoc(template("simple"), { file: null, dirty: true, source: "load" });
}
