// Step cards: one function per card kind, shared by the run panel, history and
// Try it out. Every value is put in as text.

import { SECRET_KEY } from "./api.js";
import { bodyView } from "./body.js";
import { append, codeBlock, copyText, formatBytes, formatDuration, h, safeUrl, toast } from "./dom.js";

// Values of secrets (prompt answers and variables whose names look secret, and the
// names a flow or environment lists) never show in chips or highlights.
export const MASK = "••••";
const NAMED = /^\{\{\s*\.(input|vars)\.([A-Za-z0-9_-]+)/;

export function isSecret(sub, secrets) {
  const m = NAMED.exec(sub.placeholder || "");
  if (!m) return false;
  return SECRET_KEY.test(m[2]) || Boolean(secrets && secrets.has(m[2]));
}

function masked(subs, secrets) {
  return (subs || []).map((s) => (isSecret(s, secrets) ? { ...s, secret: true } : s));
}

const STATUS = {
  completed: { label: "Success", icon: "✓", cls: "success" },
  failed: { label: "Failed", icon: "✕", cls: "failure" },
  skipped: { label: "Skipped", icon: "⊘", cls: "skipped" },
  not_run: { label: "Not Run", icon: "○", cls: "notrun" },
  running: { label: "Running…", icon: "", cls: "running" },
  input: { label: "Waiting for input", icon: "?", cls: "input" },
};

const KIND_LABEL = {
  variable: "variable",
  input: "input",
  response: "response",
  header: "header",
  status: "status",
  dynamic: "dynamic",
};

function asText(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// Text with substituted values wrapped in <mark class="sub sub-KIND">.
export function marked(text, subs) {
  const frag = document.createDocumentFragment();
  let parts = [{ text: String(text ?? ""), sub: null }];
  for (const sub of subs || []) {
    const needle = asText(sub.value);
    if (!needle) continue;
    const next = [];
    let done = false;
    for (const part of parts) {
      const at = done || part.sub ? -1 : part.text.indexOf(needle);
      if (at < 0) {
        next.push(part);
        continue;
      }
      done = true;
      if (at > 0) next.push({ text: part.text.slice(0, at), sub: null });
      next.push({ text: needle, sub });
      const rest = part.text.slice(at + needle.length);
      if (rest) next.push({ text: rest, sub: null });
    }
    parts = next;
  }
  for (const part of parts) {
    if (!part.sub) frag.append(part.text);
    else {
      const kind = KIND_LABEL[part.sub.type] ? part.sub.type : "dynamic";
      frag.append(
        h("mark", { class: `sub sub-${kind}`, title: `${part.sub.placeholder} (${kind})` }, part.sub.secret ? MASK : part.text),
      );
    }
  }
  return frag;
}

// In a pretty-printed JSON body, mark the tokens that are substituted values
// (a string, number or boolean that a whole placeholder produced).
function markBody(pre, subs) {
  for (const sub of subs) {
    const v = sub.value;
    if (v === null || typeof v === "object") continue;
    const needle = typeof v === "string" ? JSON.stringify(v) : String(v);
    const token = [...pre.querySelectorAll("span.t-str, span.t-num, span.t-bool")].find(
      (el) => el.textContent === needle,
    );
    if (!token) continue;
    const kind = KIND_LABEL[sub.type] ? sub.type : "dynamic";
    const text = sub.secret ? JSON.stringify(MASK) : needle;
    token.replaceWith(h("mark", { class: `sub sub-${kind}`, title: `${sub.placeholder} (${kind})` }, text));
  }
  return pre;
}

function requestBody(body, subs) {
  if (body === undefined || body === null) return null;
  const bodySubs = subs.filter((s) => s.path && (s.path === "body" || s.path.startsWith("body.") || s.path.startsWith("body[")));
  if (typeof body === "string") return h("pre", { class: "code" }, marked(body, bodySubs));
  return markBody(codeBlock(body), bodySubs);
}

function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

export function curlFor(rec) {
  const method = String(rec.method || "GET").toUpperCase();
  // `-X HEAD` makes curl wait for a body that never comes; `-I` sends a HEAD.
  // --globoff: [ ] { } in a URL (filter[name]=x) are text, not curl's globs; a
  // space is sent encoded, as flowrun's client sends it (curl refuses a raw one).
  const url = String(rec.url || "").replace(/ /g, "%20");
  const parts = ["curl", "--globoff", ...(method === "HEAD" ? ["-I"] : ["-X", method]), shellQuote(url)];
  const headers = (rec.request && rec.request.headers) || {};
  // "Name:" with nothing after it would remove the header; "Name;" sends it empty.
  for (const [k, v] of Object.entries(headers)) parts.push("-H", shellQuote(v === "" ? `${k};` : `${k}: ${v}`));
  const body = rec.request ? rec.request.body : undefined;
  if (body !== undefined && body !== null) {
    parts.push("--data-raw", shellQuote(typeof body === "string" ? body : JSON.stringify(body)));
  }
  return parts.join(" ");
}

function head(status, { step, method, name, id, extra = [] }) {
  const s = STATUS[status] || STATUS.completed;
  return h(
    "div",
    { class: "card-head" },
    h(
      "span",
      { class: `status-icon ${s.cls}`, "aria-hidden": "true" },
      status === "running" ? h("span", { class: "spinner" }) : s.icon,
    ),
    h("span", { class: "step-no" }, `#${step ?? "?"}`),
    method ? h("span", { class: `method m-${String(method).toUpperCase()}` }, method) : null,
    h("span", { class: "card-name" }, name || id || ""),
    id && name && id !== name ? h("span", { class: "card-id" }, id) : null,
    h("span", { class: "spacer" }),
    ...extra,
    h("span", { class: `status-label ${s.cls}` }, s.label),
  );
}

function httpStatus(resp) {
  if (!resp || resp.status == null) return null;
  const family = `s${String(resp.status)[0]}xx`;
  return h(
    "span",
    { class: `http-status ${family}`, title: "HTTP status" },
    `${resp.status}${resp.statusText ? ` ${resp.statusText}` : ""}`,
  );
}

function headersTable(headers, subs, prefix) {
  const rows = Object.entries(headers || {});
  if (!rows.length) return h("p", { class: "muted small" }, "No headers");
  return h(
    "table",
    { class: "kv" },
    h(
      "tbody",
      null,
      rows.map(([k, v]) =>
        h(
          "tr",
          null,
          h("th", { scope: "row" }, k),
          h(
            "td",
            null,
            marked(
              v,
              (subs || []).filter((s) => s.path && s.path.toLowerCase() === `${prefix}.${k}`.toLowerCase()),
            ),
          ),
        ),
      ),
    ),
  );
}

// A collapsible part of a card. Its content is built when first opened: a run
// of many steps with big bodies would otherwise pretty-print and colour every
// body up front (tens of ms each) for sections nobody opens.
function section(title, meta, build) {
  const body = h("div", { class: "section-body" });
  const details = h(
    "details",
    { class: "card-section" },
    h("summary", null, h("span", null, title), meta ? h("span", { class: "muted small" }, meta) : null),
    body,
  );
  let built = false;
  const fill = () => {
    if (built) return;
    built = true;
    append(body, [build()]);
  };
  details.querySelector("summary").addEventListener("click", fill);
  details.addEventListener("toggle", () => details.open && fill());
  return details;
}

// A finished step (`step` event or stored record).
export function stepCard(rec, { readOnly = false, secrets = null } = {}) {
  if (rec.status === "not_run") return notRunCard(rec);
  const status = rec.status || "completed";
  const subs = masked(rec.substitutions, secrets);
  const card = h("article", {
    class: `card ${STATUS[status]?.cls || ""}`,
    role: "listitem",
    dataset: { stepIndex: rec.stepIndex ?? "", status },
    "aria-label": `Step ${rec.step ?? ""} ${rec.name || rec.id || ""}: ${STATUS[status]?.label || status}`,
  });
  const extra = [
    httpStatus(rec.response),
    rec.duration != null && status !== "skipped"
      ? h("span", { class: "duration" }, formatDuration(rec.duration))
      : null,
    rec.attempts > 1 ? h("span", { class: "attempts" }, `${rec.attempts} attempts`) : null,
  ];
  card.append(head(status, { ...rec, extra }));
  if (rec.url) {
    card.append(
      h("div", { class: "card-url" }, marked(rec.url, subs.filter((s) => s.path === "url" || s.path === "baseUrl"))),
    );
  }
  if (rec.skipReason) card.append(h("p", { class: "card-note" }, `Skipped: ${rec.skipReason}`));
  if (rec.error) card.append(h("p", { class: "card-error" }, rec.error));
  if (rec.launchBrowser) {
    card.append(
      h(
        "p",
        { class: "card-note" },
        "Browser link: ",
        safeUrl(rec.launchBrowser)
          ? h("a", { href: rec.launchBrowser, target: "_blank", rel: "noopener noreferrer" }, rec.launchBrowser)
          : h("code", { title: "Not an http(s) address: not opened" }, rec.launchBrowser),
      ),
    );
  }
  const vals = rec.validations || [];
  if (vals.length) {
    card.append(
      h(
        "ul",
        { class: "validations", "aria-label": "Validations" },
        vals.map((v) =>
          h(
            "li",
            { class: v.passed ? "pass" : "fail" },
            h("span", { class: "v-icon", "aria-hidden": "true" }, v.passed ? "✓" : "✕"),
            h("span", { class: "visually-hidden" }, v.passed ? "passed: " : "failed: "),
            v.message || `${v.type}${v.path ? ` ${v.path}` : ""}`,
          ),
        ),
      ),
    );
  }
  if (subs.length) {
    card.append(
      h(
        "div",
        { class: "subs", "aria-label": "Substituted values" },
        subs.map((s) =>
          h(
            "span",
            { class: `sub-chip sub-${KIND_LABEL[s.type] ? s.type : "dynamic"}`, title: s.path || "" },
            h("span", { class: "sub-kind" }, s.type || "dynamic"),
            h("code", null, s.placeholder),
            " → ",
            h("code", { class: "sub-value", title: s.secret ? "secret: hidden" : null }, s.secret ? MASK : asText(s.value)),
          ),
        ),
      ),
    );
  }
  if (rec.request) {
    card.append(
      section("Request", null, () => [
        headersTable(rec.request.headers, subs, "headers"),
        requestBody(rec.request.body, subs),
      ]),
    );
  }
  if (rec.response) {
    const r = rec.response;
    const meta = [formatBytes(r.size), r.truncated ? "truncated" : ""].filter(Boolean).join(" · ");
    const empty = r.body === undefined || r.body === null || r.body === "";
    card.append(
      section("Response", meta, () => [
        headersTable(r.headers, [], "response"),
        empty
          ? h("p", { class: "muted small" }, "Empty body")
          : bodyView(r.body, { name: `${rec.id || "step"}-response`, size: r.size, truncated: r.truncated }),
      ]),
    );
  }
  if (rec.request && !readOnly) {
    card.append(
      h(
        "div",
        { class: "card-actions" },
        h(
          "button",
          {
            type: "button",
            class: "btn small",
            onclick: async () => toast((await copyText(curlFor(rec))) ? "curl command copied" : "Copy failed", "info"),
          },
          "Copy as curl",
        ),
      ),
    );
  }
  return card;
}

// "Running…": only shown when a result is late (the 800 ms rule lives in runner.js).
export function runningCard(start) {
  const card = h("article", {
    class: "card running",
    role: "listitem",
    dataset: { stepIndex: start.stepIndex, status: "running" },
    "aria-label": `Step ${start.step} ${start.name || start.id}: Running…`,
  });
  card.append(head("running", start));
  if (start.url) card.append(h("div", { class: "card-url" }, start.url));
  return card;
}

// A placeholder, or an escaped `\{{` (with the `}}` that closes it), which is text.
const PLACEHOLDER = /\\\{\{(?:(?:(?!\{\{).)*?\}\})?|\{\{[\s\S]*?\}\}/g;

// The kind of value a placeholder would take, for the substitution colours.
function placeholderKind(text) {
  const expr = text.slice(2, -2).trim();
  if (expr.startsWith("$")) return "dynamic";
  const root = /^\.(vars|input|responses|headers|status)\b/.exec(expr);
  return root ? { vars: "variable", responses: "response", headers: "header" }[root[1]] || root[1] : "dynamic";
}

// Text as written in the flow, each {{ … }} a dashed chip in its kind's colour:
// it reads as a template waiting for values, not as a broken address.
export function unresolved(text) {
  const frag = document.createDocumentFragment();
  const value = String(text ?? "");
  let last = 0;
  for (const m of value.matchAll(PLACEHOLDER)) {
    if (m[0].startsWith("\\")) continue; // escaped: text as written
    if (m.index > last) frag.append(value.slice(last, m.index));
    const kind = placeholderKind(m[0]);
    frag.append(h("span", { class: `ph sub-${kind}`, title: `${kind}: not resolved, the step never ran` }, m[0]));
    last = m.index + m[0].length;
  }
  frag.append(value.slice(last));
  return frag;
}

// A step that never ran (after an interrupt or a failure, live or in history).
export function notRunCard(rec) {
  const card = h("article", {
    class: "card notrun",
    role: "listitem",
    dataset: { stepIndex: rec.stepIndex ?? "", status: "not_run" },
    "aria-label": `Step ${rec.step ?? ""} ${rec.name || rec.id || ""}: Not Run`,
  });
  card.append(head("not_run", rec));
  const url = String(rec.url || "");
  const hasPlaceholders = [...url.matchAll(PLACEHOLDER)].some((m) => !m[0].startsWith("\\"));
  if (url) {
    card.append(
      h(
        "div",
        { class: "card-url template" },
        h("span", { class: "url-tag", title: "The URL as written in the flow: this step never ran" }, "as written"),
        h("span", { class: "url-text" }, unresolved(url)),
      ),
    );
  }
  const note = rec.note || "This step was not run.";
  card.append(
    h("p", { class: "card-note" }, hasPlaceholders ? `${note} Its placeholders were never resolved.` : note),
  );
  return card;
}

export function inputCard(ev, onOpen) {
  const card = h("article", {
    class: "card input",
    role: "listitem",
    dataset: { stepIndex: ev.stepIndex, status: "input" },
  });
  card.append(head("input", { step: ev.step, name: ev.name }));
  card.append(
    h(
      "div",
      { class: "card-actions" },
      h("span", { class: "muted small" }, "This step is waiting for your answer."),
      h("button", { type: "button", class: "btn small primary", onclick: onOpen }, "Answer prompt"),
    ),
  );
  return card;
}
