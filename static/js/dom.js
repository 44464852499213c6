// DOM helpers. Every value is inserted as text (textContent / text nodes), never as
// HTML, so data from flows and responses cannot inject markup; every URL an element
// or a new tab receives goes through safeUrl().

// The one gate for URLs Studio hands to the browser (href, src, window.open): http(s)
// anywhere, blob: made by this page (downloads, raw bodies); anything else
// (javascript:, data:, file:, …) is refused with null.
export function safeUrl(url) {
  if (url === null || url === undefined || url === "") return null;
  let u;
  try {
    u = new URL(String(url), location.href);
  } catch {
    return null;
  }
  if (u.protocol === "http:" || u.protocol === "https:") return u.href;
  if (u.protocol === "blob:" && u.href.startsWith(`blob:${location.origin}/`)) return u.href;
  return null;
}

const URL_ATTRS = new Set(["href", "src", "action", "formaction"]);

// Open a URL in a new tab, without handing it this page (noopener); false if the
// URL is refused or the browser blocked the tab.
export function openTab(url) {
  const safe = safeUrl(url);
  if (!safe) return false;
  let win = null;
  try {
    win = window.open(safe, "_blank");
  } catch {
    win = null;
  }
  if (!win) return false;
  win.opener = null;
  return true;
}

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs && (Array.isArray(attrs) || attrs instanceof Node || typeof attrs !== "object")) {
    throw new TypeError(`h(${tag}): attributes must be a plain object or null`);
  }
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "text") el.textContent = value;
      else if (URL_ATTRS.has(key)) {
        const safe = safeUrl(value);
        if (safe) el.setAttribute(key, safe);
      }
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

export function formatBytes(n) {
  if (typeof n !== "number" || !isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDuration(seconds) {
  if (typeof seconds !== "number" || !isFinite(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(2)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

export function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

// Pretty JSON with token colouring; built from text nodes only.
const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

export function codeBlock(value, { maxHighlight = 200_000 } = {}) {
  const pre = h("pre", { class: "code" });
  const text = pretty(value);
  if (typeof value === "string" || text.length > maxHighlight) {
    pre.textContent = text;
    return pre;
  }
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    let cls = "t-num";
    if (m[1]) cls = m[2] ? "t-key" : "t-str";
    else if (m[3]) cls = m[3] === "null" ? "t-null" : "t-bool";
    pre.append(h("span", { class: cls }, m[1] ?? m[0]));
    if (m[2]) pre.append(m[2]);
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

// A short notice. With `action` ({label, run}) it carries a button (e.g. Undo) and
// stays longer; the button is reachable from the keyboard.
export function toast(message, kind = "info", action = null) {
  const box = document.getElementById("toasts");
  if (!box) return null;
  const el = h("div", { class: `toast toast-${kind}${action ? " has-action" : ""}` }, h("span", null, message));
  if (action) {
    el.append(
      h("button", {
        type: "button",
        class: "toast-action",
        onclick: () => {
          el.remove();
          action.run();
        },
      }, action.label),
    );
  }
  box.append(el);
  const stay = action ? 8000 : 3200;
  setTimeout(() => el.classList.add("leaving"), stay);
  setTimeout(() => el.remove(), stay + 400);
  return el;
}

export function downloadJson(filename, data) {
  downloadBlob(filename, new Blob([JSON.stringify(data, null, 2) + "\n"], { type: "application/json" }));
}

export function downloadBlob(filename, blob) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h("textarea", { class: "offscreen", readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// A few stroke icons (SVG built with DOM calls, no markup strings).
const ICONS = {
  copy: ["M9 9h10v10H9z", "M5 15V5h10"],
  trash: ["M4 7h16", "M10 11v6", "M14 11v6", "M6 7l1 13h10l1-13", "M9 7V4h6v3"],
};

export function icon(name) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
