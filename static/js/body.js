// A response body of any size: pretty (small bodies coloured in full, large ones as
// a folded tree built as it is opened), raw text with search, and the whole body to
// download or open in a tab.

import { codeBlock, downloadBlob, formatBytes, h, openTab, toast } from "./dom.js";

// Above this many characters the pretty view is a folded tree, not one coloured block.
const TREE_FROM = 20_000;
const PAGE = 100; // tree children drawn at a time
const MAX_MATCHES = 5_000;

function scalar(v) {
  if (v === null) return h("span", { class: "t-null" }, "null");
  if (typeof v === "string") return h("span", { class: "t-str" }, JSON.stringify(v));
  if (typeof v === "number") return h("span", { class: "t-num" }, String(v));
  if (typeof v === "boolean") return h("span", { class: "t-bool" }, String(v));
  return h("span", null, String(v));
}

function treeNode(key, value, depth) {
  const label = key === null ? null : h("span", { class: "t-key" }, `${JSON.stringify(String(key))}: `);
  if (value === null || typeof value !== "object") return h("li", null, label, scalar(value));
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const brackets = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  const count = Array.isArray(value) ? `${entries.length} item${entries.length === 1 ? "" : "s"}` : `${entries.length} key${entries.length === 1 ? "" : "s"}`;
  const list = h("ul", { class: "tree" });
  const details = h(
    "details",
    { class: "tree-node" },
    h("summary", null, label, brackets[0], h("span", { class: "muted small" }, ` ${count} `), brackets[1]),
    list,
  );
  let shown = 0;
  const more = () => {
    const next = entries.slice(shown, shown + PAGE);
    for (const [k, v] of next) list.append(treeNode(Array.isArray(value) ? k : k, v, depth + 1));
    shown += next.length;
    list.querySelector(":scope > .tree-more")?.remove();
    if (shown < entries.length) {
      list.append(
        h("li", { class: "tree-more" }, h("button", { type: "button", class: "btn small ghost", onclick: more }, `Show ${Math.min(PAGE, entries.length - shown)} more of ${entries.length - shown}`)),
      );
    }
  };
  // Children are drawn when a level is first opened: a large body costs nothing
  // for the levels nobody opens.
  details.addEventListener("toggle", () => {
    if (details.open && !shown) more();
  });
  if (depth < 1) details.open = true;
  return h("li", null, details);
}

function tree(value) {
  const root = h("ul", { class: "tree tree-root code" });
  root.append(treeNode(null, value, 0));
  return root;
}

function bodyText(body) {
  if (body === undefined || body === null) return "";
  return typeof body === "string" ? body : JSON.stringify(body, null, 2);
}

// opts: {name (file name stem), size, truncated}
export function bodyView(body, { name = "response", size, truncated = false } = {}) {
  const isJson = body !== null && typeof body === "object";
  const text = bodyText(body);
  const wrap = h("div", { class: "body-view" });
  const content = h("div", { class: "body-content" });
  let mode = isJson ? "pretty" : "raw";
  let pre = null;
  let matches = [];
  let current = -1;

  const status = h("span", { class: "muted small body-count", role: "status" });
  const search = h("input", { type: "search", class: "body-search", placeholder: "Search in body", "aria-label": "Search in body", spellcheck: "false" });
  const prettyBtn = h("button", { type: "button", "aria-pressed": "true" }, "Pretty");
  const rawBtn = h("button", { type: "button", "aria-pressed": "false" }, "Raw");

  const drawRaw = (needle) => {
    pre = h("pre", { class: "code body-raw" });
    matches = [];
    if (!needle) {
      pre.textContent = text;
    } else {
      const hay = text.toLowerCase();
      const n = needle.toLowerCase();
      let last = 0;
      let at = hay.indexOf(n);
      while (at >= 0 && matches.length < MAX_MATCHES) {
        if (at > last) pre.append(text.slice(last, at));
        const m = h("mark", { class: "found" }, text.slice(at, at + n.length));
        matches.push(m);
        pre.append(m);
        last = at + n.length;
        at = hay.indexOf(n, last);
      }
      pre.append(text.slice(last));
    }
    content.replaceChildren(pre);
  };

  const show = (next) => {
    mode = next;
    prettyBtn.setAttribute("aria-pressed", String(mode === "pretty"));
    rawBtn.setAttribute("aria-pressed", String(mode === "raw"));
    if (mode === "pretty") {
      content.replaceChildren(text.length > TREE_FROM ? tree(body) : codeBlock(body));
      matches = [];
      status.textContent = "";
    } else drawRaw(search.value);
  };

  const go = (step) => {
    if (!matches.length) return;
    matches[current]?.classList.remove("current");
    current = (current + step + matches.length) % matches.length;
    const m = matches[current];
    m.classList.add("current");
    m.scrollIntoView({ block: "nearest" });
    status.textContent = `${current + 1} of ${matches.length}${matches.length === MAX_MATCHES ? "+" : ""}`;
  };

  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const needle = search.value;
      if (!needle) {
        status.textContent = "";
        if (mode === "raw") drawRaw("");
        return;
      }
      // Search reads the raw text: every byte of the body, folded or not.
      if (mode !== "raw") {
        mode = "raw";
        prettyBtn.setAttribute("aria-pressed", "false");
        rawBtn.setAttribute("aria-pressed", "true");
      }
      drawRaw(needle);
      current = -1;
      if (matches.length) go(1);
      else status.textContent = "No match";
    }, 150);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      go(e.shiftKey ? -1 : 1);
    }
  });
  prettyBtn.addEventListener("click", () => show("pretty"));
  rawBtn.addEventListener("click", () => show("raw"));

  const blob = () =>
    new Blob([isJson ? JSON.stringify(body) : text], { type: isJson ? "application/json" : "text/plain;charset=utf-8" });
  const download = h(
    "button",
    { type: "button", class: "btn small", onclick: () => downloadBlob(`${name}${isJson ? ".json" : ".txt"}`, blob()) },
    "Download body",
  );
  // As plain text in the new tab: a body that holds HTML must not run as a page
  // of this origin.
  const openRaw = h(
    "button",
    {
      type: "button",
      class: "btn small",
      onclick: () => {
        const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
        if (!openTab(url)) toast("The browser blocked the new tab: use Download body.", "warn");
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      },
    },
    "Open raw",
  );
  wrap.append(
    h(
      "div",
      { class: "body-tools" },
      isJson ? h("div", { class: "segmented small", role: "group", "aria-label": "Body view" }, prettyBtn, rawBtn) : null,
      search,
      status,
      h("span", { class: "spacer" }),
      download,
      openRaw,
    ),
  );
  if (truncated) {
    wrap.append(
      h(
        "p",
        { class: "card-note" },
        `The server cut this body of ${formatBytes(size)} at FLOWRUN_MAX_BODY_BYTES: what is shown, searched and downloaded here is the part it kept.`,
      ),
    );
  }
  wrap.append(content);
  show(mode);
  return wrap;
}
