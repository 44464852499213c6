// The flows panel: workspace files (list, open, save, rename, delete, download),
// new flows from templates and imports (previewed before they are created). The
// last opened flow reopens on reload, and unsaved work kept in the browser is
// offered back.

import { api, listOf } from "./api.js";
import { dropDraft, forgetDraft, hideBanner, offerDraft, readDraft } from "./autosave.js";
import { ask } from "./dialogs.js";
import { $, $$, clear, downloadJson, h, toast } from "./dom.js";
import { refuse } from "./guard.js";
import { canonical, isDirty, setKnown, slug, store } from "./state.js";
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

// The workspace file whose flow is called `flowName` (History opens runs by it).
export function fileForFlow(flowName) {
  const found = files.find((e) => typeof e === "object" && (e.flowName || e.title) === flowName);
  return found ? entryName(found) : null;
}

async function refreshList() {
  try {
    files = listOf(await api.listFlows(), "flows");
  } catch (err) {
    if (!err.unreachable) toast(`Could not list flows: ${err.message}`, "error");
    renderList();
    return files;
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
            onclick: () => {
              if (entry && entry.invalid) toast(`${name}.json is not valid JSON: fix it in a text editor (Studio cannot open it).`, "error");
              else if (name === store.get().file && !isDirty()) document.dispatchEvent(new CustomEvent("flowrun:opened"));
              else openFlow(name).then((opened) => opened && document.dispatchEvent(new CustomEvent("flowrun:opened")));
            },
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
  const file = store.get().file;
  for (const button of $$(".flow-item", list)) {
    const current = button.dataset.name === file;
    button.classList.toggle("current", current);
    if (current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

// Unsaved work is only thrown away when the person says so (and then also the copy
// kept in this browser).
export async function confirmDiscard() {
  if (!isDirty()) return true;
  const ok = await ask({
    heading: "Discard unsaved changes?",
    message: "The open flow has changes that are not saved.",
    okLabel: "Discard",
    danger: true,
  });
  if (ok) dropDraft();
  return Boolean(ok);
}

// Opens race (a click while the first flow loads): the latest request wins.
let openGeneration = 0;

function load(doc, file) {
  openGeneration += 1; // a flow still loading must not replace this one
  const flow = canonical(doc);
  store.load({ flow, file, saved: file ? JSON.stringify(flow) : null });
  remember(file);
  markCurrent();
  return flow;
}

export async function openFlow(name, { quiet = false } = {}) {
  if (!quiet && !(await confirmDiscard())) return false;
  const generation = ++openGeneration;
  const before = store.get();
  let doc;
  try {
    doc = await api.getFlow(name);
  } catch (err) {
    if (!quiet) toast(`Could not open ${name}: ${err.message}`, "error");
    return false;
  }
  if (generation !== openGeneration) return false;
  // Edited while the file loaded: those edits were not there to be discarded.
  const now = store.get();
  if (now.flow !== before.flow || now.drafts !== before.drafts) {
    if (!quiet && name !== now.file) toast(`Kept your changes: ${name}.json was not opened.`, "info");
    return false;
  }
  // Accept either the document itself or {"name", "flow"/"config"} wrappers.
  if (doc && !Array.isArray(doc.nodes) && (doc.flow || doc.config)) doc = doc.flow || doc.config;
  const flow = load(doc, name);
  offerDraft(name, flow);
  loadKnown(flow.name);
  return true;
}

// The last stored run of this flow: its responses feed autocomplete and the path
// suggestions of the check builders before anything ran in this page.
async function loadKnown(flowName) {
  if (!flowName) return;
  try {
    const page = await api.executions({ flow: flowName, limit: 1 });
    const last = listOf(page, "executions")[0];
    if (!last) return;
    const record = await api.execution(last.executionId || last.id);
    for (const rec of record.steps || []) {
      if (rec.response && rec.response.body !== undefined && !(rec.id in store.get().known)) {
        setKnown(rec.id, rec.response.body, rec.response.headers);
      }
    }
  } catch {
    /* suggestions only */
  }
}

function unreachableNote(action) {
  return `${action}: the flowrun server cannot be reached. Nothing is lost: your changes are kept in this browser; try again once it is back.`;
}

export async function save() {
  const s = store.get();
  if (!s.flow) return false;
  if (refuse("Not saved")) return false;
  let name = s.file;
  if (!name) {
    name = await ask({
      heading: "Save flow",
      label: "File name in the workspace",
      value: slug(s.flow.name),
      okLabel: "Save",
      validate: (v) => (NAME_RE.test(v) ? null : "Use letters, digits, '_', '-' and '.' only."),
    });
    if (!name) return false;
    name = name.replace(/\.json$/, "");
    if (files.map(entryName).includes(name)) {
      const replace = await ask({ heading: `Replace ${name}.json?`, message: "A flow with this file name is already in the workspace.", okLabel: "Replace", danger: true });
      if (!replace) return false;
    }
  }
  const flow = store.get().flow;
  try {
    await api.saveFlow(name, flow);
  } catch (err) {
    toast(err.unreachable ? unreachableNote("Not saved") : `Save failed: ${err.message}`, "error");
    return false;
  }
  const wasNew = !store.get().file;
  store.set({ file: name, saved: JSON.stringify(flow) });
  if (wasNew) forgetDraft(null);
  remember(name);
  toast(`Saved ${name}.json`, "success");
  await refreshList();
  return true;
}

async function rename() {
  const s = store.get();
  if (!s.file) return save();
  if (refuse("Not renamed")) return false;
  const old = s.file;
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
  const flow = store.get().flow;
  try {
    await api.saveFlow(name, flow);
    await api.deleteFlow(old);
  } catch (err) {
    toast(err.unreachable ? unreachableNote("Not renamed") : `Rename failed: ${err.message}`, "error");
    return false;
  }
  forgetDraft(old);
  store.set({ file: name, saved: JSON.stringify(flow) });
  remember(name);
  toast(`Renamed to ${name}.json`, "success");
  await refreshList();
  return true;
}

async function remove() {
  const name = store.get().file;
  if (!name) {
    toast("This flow is not saved in the workspace.", "info");
    return;
  }
  const ok = await ask({ heading: `Delete ${name}.json?`, message: "The file is removed from the workspace.", okLabel: "Delete", danger: true });
  if (!ok) return;
  try {
    await api.deleteFlow(name);
  } catch (err) {
    toast(err.unreachable ? unreachableNote("Not deleted") : `Delete failed: ${err.message}`, "error");
    return;
  }
  forgetDraft(name);
  hideBanner();
  load(template("empty"), null);
  toast(`Deleted ${name}.json`, "success");
  await refreshList();
}

async function newFrom(kind) {
  if (!(await confirmDiscard())) return;
  hideBanner();
  load(template(kind), null);
}

// ---- imports -------------------------------------------------------------------------

// A file's text: UTF-8, or UTF-16 when its byte-order mark says so (the mark dropped).
async function fileText(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let encoding = "utf-8";
  if (bytes[0] === 0xff && bytes[1] === 0xfe) encoding = "utf-16le";
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) encoding = "utf-16be";
  return new TextDecoder(encoding).decode(bytes);
}

// /api/import answers the flow itself, with its report beside it in importReport
// (kept out of the flow): "12 requests: 9 as they were, 2 with notes, 1 skipped".
function imported(res) {
  const { importReport: report, ...doc } = res;
  if (!report) return { flow: canonical(doc), summary: "" };
  const parts = [`${report.asIs} as they were`];
  if (report.withNotes) parts.push(`${report.withNotes} with notes`);
  if (report.skipped) parts.push(`${report.skipped} skipped by default`);
  if (report.leftOut) parts.push(`${report.leftOut} left out`);
  const noun = report.requests === 1 ? "request" : "requests";
  return { flow: canonical(doc), summary: `${report.requests} ${noun}: ${parts.join(", ")}` };
}

// What an import will create, and the importer's notes, before anything is created.
function preview(flow, summary) {
  const nodes = Array.isArray(flow.nodes) ? flow.nodes : [];
  const vars = Object.keys(flow.variables || {});
  return h(
    "div",
    { class: "import-preview" },
    h("p", null, h("strong", null, flow.name || "Untitled flow"), ` · ${nodes.length} step${nodes.length === 1 ? "" : "s"}`, vars.length ? ` · variables: ${vars.join(", ")}` : ""),
    summary ? h("p", { class: "import-report" }, `(${summary})`) : null,
    flow.description ? h("p", { class: "import-notes" }, flow.description) : null,
    h(
      "ol",
      { class: "import-steps" },
      nodes.map((n) =>
        h(
          "li",
          null,
          h("span", { class: `method m-${String(n.method || "GET").toUpperCase()}` }, String(n.method || "GET").toUpperCase()),
          " ",
          h("span", null, n.name || n.id),
          " ",
          h("code", { class: "muted" }, n.url || ""),
          n.description ? h("p", { class: "import-notes" }, n.description) : null,
        ),
      ),
    ),
  );
}

async function confirmImport({ flow, summary }, source) {
  const ok = await ask({
    heading: "Import preview",
    message: `From ${source}: this creates a new, unsaved flow.`,
    content: preview(flow, summary),
    okLabel: "Create flow",
    wide: true,
  });
  if (!ok || !(await confirmDiscard())) return false;
  hideBanner();
  load(flow, null);
  return true;
}

// A file: flowrun/FlowSphere JSON opens as is; a Postman collection or an OpenAPI
// document goes through /api/import, and is previewed first.
async function importFile(file) {
  const textContent = await fileText(file);
  let doc = null;
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
    let result;
    try {
      result = imported(await api.importFlow(isPostman ? "postman" : "openapi", textContent));
    } catch (err) {
      toast(`Import failed: ${err.message}`, "error");
      return;
    }
    if (await confirmImport(result, file.name)) {
      const counts = result.summary ? ` (${result.summary})` : "";
      toast(`Imported ${file.name}${counts}: save it to keep it in the workspace`, "success");
    }
    return;
  }
  if (!doc || typeof doc !== "object" || !Array.isArray(canonical(doc).nodes)) {
    toast(`${file.name} is not a flow (no "nodes" or "steps" list).`, "error");
    return;
  }
  if (!(await confirmDiscard())) return;
  hideBanner();
  load(doc, null);
  toast(`Imported ${file.name}: save it to keep it in the workspace`, "success");
}

async function importCurl() {
  let result = null;
  // A command that cannot be imported keeps the dialog open, with the paste.
  const content = await ask({
    heading: "Import from curl",
    label: "curl command",
    multiline: true,
    okLabel: "Preview",
    validate: async (text) => {
      if (!text.trim()) return "Paste a curl command.";
      try {
        result = imported(await api.importFlow("curl", text));
        return null;
      } catch (err) {
        const detail = (err.errors || []).map((e) => e.message).join("; ");
        return `Could not import: ${detail || err.message}`;
      }
    },
  });
  if (!content || !result) return;
  await confirmImport(result, "curl");
}

// ---- wiring ------------------------------------------------------------------------------

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
    const s = store.get();
    if (!s.flow || refuse("Not downloaded")) return;
    downloadJson(`${s.file || slug(s.flow.name)}.json`, s.flow);
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") {
      e.preventDefault();
      save();
    }
  });
  // Leaving with unsaved edits asks first (they are kept in this browser as well).
  window.addEventListener("beforeunload", (e) => {
    if (!isDirty()) return;
    e.preventDefault();
    e.returnValue = "";
  });
  const docFile = $("#doc-file");
  const dirty = $("#dirty");
  store.subscribe((s, prev) => {
    if (s.file !== prev.file) markCurrent();
    if (s.flow === prev.flow && s.drafts === prev.drafts && s.saved === prev.saved && s.file === prev.file) return;
    docFile.textContent = s.file ? `${s.file}.json` : "unsaved flow";
    dirty.hidden = !isDirty(s);
    document.title = `${isDirty(s) ? "• " : ""}${s.flow && s.flow.name ? `${s.flow.name} — ` : ""}flowrun Studio`;
  });
  document.addEventListener("flowrun:online", refreshList);
}

// Reopen the last flow; else the first workspace flow; else a template. Unsaved
// work kept from last time is offered back.
export async function openInitial() {
  const before = openGeneration;
  const start = store.get();
  // Still ours to open: no opens but our own `expected` ones, no edits.
  const mine = (expected) => openGeneration === expected && store.get().flow === start.flow;
  await refreshList();
  if (!mine(before)) return;
  let last = null;
  try {
    last = localStorage.getItem(LAST);
  } catch {
    last = null;
  }
  const names = files.map(entryName);
  const unsaved = !last ? readDraft(null) : null;
  // Files the server already knows are broken are not tried first.
  const usable = names.filter((n, i) => !(files[i] && files[i].invalid));
  const tries = [...new Set([...(last && names.includes(last) ? [last] : []), ...usable])].slice(0, 5);
  let expected = before;
  for (const name of tries) {
    if (!mine(expected)) return;
    if (await openFlow(name, { quiet: true })) {
      if (unsaved) offerDraft(null, null);
      return;
    }
    expected += 1; // the failed try's own generation
  }
  if (!mine(expected)) return;
  if (!store.get().flow) load(template("simple"), null);
  if (unsaved) offerDraft(null, null);
}

