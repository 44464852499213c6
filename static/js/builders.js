// Row builders for validations ("checks") and conditions: kind, path (suggested from
// known responses), operator and expected value per row, with the list's JSON one
// click away. Both draw from the same path of the store, so they stay in sync.

import { append, h } from "./dom.js";
import { asJson, asNumber, asText, bindText, datalist, nextId, pathsOf } from "./fields.js";
import { setValue } from "./state.js";
import { equal, getIn } from "./store.js";

const OPERATORS = [
  ["exists", "exists"],
  ["equals", "equals"],
  ["notEquals", "does not equal"],
  ["greaterThan", "greater than"],
  ["lessThan", "less than"],
  ["greaterThanOrEqual", "at least"],
  ["lessThanOrEqual", "at most"],
  ["contains", "contains"],
  ["matches", "matches regex"],
];
const OP_KEYS = OPERATORS.map(([k]) => k);

const V_KINDS = [
  ["httpStatusCode", "Status code"],
  ["jsonpath", "JSON path"],
  ["header", "Header"],
  ["jq", "jq"],
  ["schema", "JSON Schema"],
  ["maxDurationMs", "Max duration"],
];
const WITH_OPS = new Set(["jsonpath", "header", "jq"]);
const DEFAULTS = { httpStatusCode: 200, jsonpath: ".", header: "Content-Type", jq: ".", schema: { type: "object" }, maxDurationMs: 1000 };

function kindOf(v) {
  if (!v || typeof v !== "object" || Array.isArray(v)) return "custom";
  for (const [k] of V_KINDS) if (k in v) return k;
  return "custom";
}

const opsOf = (v) => OP_KEYS.filter((k) => v && typeof v === "object" && k in v);

// Expected values: numbers, booleans and null as typed JSON, other text as a string
// (placeholders included); `contains` and `matches` always compare text.
function expectedCodec(op) {
  return {
    parse: (t) => {
      if (op === "matches" || op === "contains") return t;
      const s = t.trim();
      if (/^(true|false|null)$/.test(s) || /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(s)) return JSON.parse(s);
      if (/^[[{]/.test(s)) {
        try {
          return JSON.parse(s);
        } catch {
          return t;
        }
      }
      return t;
    },
    format: (v) => (typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v)),
  };
}

const statusCodec = {
  parse: (t) => {
    const parts = t.split(/[\s,]+/).filter(Boolean);
    if (!parts.length) throw new Error("Give a status code, e.g. 200 (or a list: 200, 201).");
    const codes = parts.map(Number);
    if (codes.some((c) => !Number.isInteger(c) || c < 100 || c > 599)) {
      throw new Error("Status codes are whole numbers from 100 to 599, e.g. 200 or 200, 201.");
    }
    return codes.length === 1 ? codes[0] : codes;
  },
  format: (v) => (Array.isArray(v) ? v.join(", ") : v === undefined ? "" : String(v)),
};

// A condition's status accepts a placeholder too.
const condStatusCodec = {
  parse: (t) => (/^\s*\d+\s*$/.test(t) ? Number(t) : t),
  format: (v) => (v === undefined || v === null ? "" : String(v)),
};

function small(tag, attrs, ...kids) {
  return h(tag, { ...attrs, id: attrs.id || nextId("b") }, ...kids);
}

function select(options, label, value) {
  const el = small("select", { "aria-label": label }, options.map(([v, t]) => h("option", { value: v }, t)));
  el.value = value;
  return el;
}

// ---- operators of one row --------------------------------------------------------

function opsEditor(rowPath, obj, label, setRow, parts) {
  const box = h("div", { class: "ops" });
  opsOf(obj).forEach((op, n) => {
    const opSel = select(OPERATORS, `${label} operator ${n + 1}`, op);
    opSel.addEventListener("change", () => {
      const cur = { ...getRow() };
      const value = cur[op];
      delete cur[op];
      cur[opSel.value] = opSel.value === "exists" ? true : value === true && op === "exists" ? "" : value;
      setRow(cur);
    });
    let valueEl;
    if (op === "exists") {
      valueEl = select([["true", "yes"], ["false", "no"]], `${label} exists ${n + 1}`, String(obj[op] !== false));
      valueEl.addEventListener("change", () => setValue(`${rowPath()}.${op}`, valueEl.value === "true", { coalesce: false }));
      parts.push({ update: (s) => (valueEl.value = String(getIn(s.flow, `${rowPath()}.${op}`) !== false)) });
    } else {
      valueEl = small("input", { type: "text", class: "ph-input", placeholder: "expected value", "aria-label": `${label} expected value ${n + 1}`, spellcheck: "false", autocomplete: "off" });
      const draw = bindText(valueEl, () => `${rowPath()}.${op}`, expectedCodec(op));
      parts.push({
        update: (s) => {
          // Where "Edit this step" takes a failed check's person.
          valueEl.dataset.path = `${rowPath()}.${op}`;
          draw(s);
        },
      });
    }
    box.append(
      h(
        "div",
        { class: "op" },
        opSel,
        valueEl,
        h(
          "button",
          {
            type: "button",
            class: "btn icon ghost small",
            "aria-label": `Remove operator ${n + 1} of ${label.toLowerCase()}`,
            onclick: () => {
              const cur = { ...getRow() };
              delete cur[op];
              setRow(cur);
            },
          },
          "−",
        ),
      ),
    );
  });
  const unused = OP_KEYS.find((k) => !(k in obj) && k !== "exists") || null;
  if (unused) {
    box.append(
      h(
        "button",
        { type: "button", class: "btn small ghost add-op", onclick: () => setRow({ ...getRow(), [unused]: "" }) },
        "+ operator",
      ),
    );
  }
  function getRow() {
    return parts.state ? getIn(parts.state.flow, rowPath()) || {} : obj;
  }
  return box;
}

// ---- one validation row ------------------------------------------------------------

function validationRow(rowPath, obj, n, ctx, parts) {
  const label = `Check ${n + 1}`;
  const kind = kindOf(obj);
  const setRow = (v) => setValue(rowPath(), v, { coalesce: false });
  const row = h("div", { class: "check-row", dataset: { path: rowPath() }, role: "group", "aria-label": label });
  if (kind === "custom") {
    const input = small("input", { type: "text", class: "code-input", "aria-label": `${label} (JSON)`, spellcheck: "false" });
    const draw = bindText(input, rowPath, asJson);
    parts.push({ update: (s) => draw(s) });
    row.append(h("span", { class: "muted small" }, "Written as JSON:"), input);
  } else {
    parts.push({ update: () => (row.dataset.path = rowPath()) });
    const kindSel = select(V_KINDS, `${label} kind`, kind);
    kindSel.addEventListener("change", () => {
      const cur = { ...(getIn(parts.state.flow, rowPath()) || {}) };
      const ops = Object.fromEntries(opsOf(cur).map((k) => [k, cur[k]]));
      const next = { [kindSel.value]: DEFAULTS[kindSel.value] };
      if (WITH_OPS.has(kindSel.value)) Object.assign(next, Object.keys(ops).length ? ops : { exists: true });
      for (const [k, v] of Object.entries(cur)) if (k.startsWith("_")) next[k] = v; // comments stay
      setRow(next);
    });
    row.append(kindSel);
    const sub = (key) => () => `${rowPath()}.${key}`;
    if (kind === "httpStatusCode") {
      const input = small("input", { type: "text", inputmode: "numeric", "aria-label": `${label} status code`, placeholder: "200 or 200, 201" });
      const draw = bindText(input, sub("httpStatusCode"), statusCodec);
      parts.push({ update: (s) => draw(s) });
      row.append(input);
    } else if (kind === "maxDurationMs") {
      const input = small("input", { type: "number", min: "1", "aria-label": `${label} milliseconds`, placeholder: "ms" });
      const draw = bindText(input, sub("maxDurationMs"), asNumber);
      parts.push({ update: (s) => draw(s) });
      row.append(input, h("span", { class: "muted small" }, "ms"));
    } else if (kind === "schema") {
      const ta = small("textarea", { rows: 3, class: "code-input", "aria-label": `${label} JSON Schema`, spellcheck: "false" });
      const draw = bindText(ta, sub("schema"), asJson);
      parts.push({ update: (s) => draw(s) });
      row.append(ta);
    } else {
      const words = { jsonpath: ["path", ".token"], header: ["header name", "X-Rate-Remaining"], jq: ["jq program", ".items | length"] }[kind];
      const input = small("input", {
        type: "text",
        class: kind === "jq" ? "code-input" : null,
        "aria-label": `${label} ${words[0]}`,
        placeholder: words[1],
        spellcheck: "false",
        autocomplete: "off",
        list: kind === "jsonpath" ? ctx.pathList() : kind === "header" ? ctx.headerList() : null,
      });
      const draw = bindText(input, sub(kind), asText);
      parts.push({ update: (s) => draw(s) });
      row.append(input, opsEditor(rowPath, obj, label, setRow, parts));
    }
  }
  row.append(removeButton(label, ctx, n));
  return row;
}

function removeButton(label, ctx, n) {
  return h(
    "button",
    { type: "button", class: "btn icon ghost small danger row-remove", "aria-label": `Remove ${label.toLowerCase()}`, onclick: () => ctx.remove(n) },
    "✕",
  );
}

// ---- one condition row -------------------------------------------------------------

const SOURCES = [
  ["node", "Step"],
  ["variable", "Variable"],
  ["input", "Prompt answer"],
];

function sourceOf(c) {
  if (!c || typeof c !== "object" || Array.isArray(c)) return "custom";
  if (["node", "variable", "input"].includes(c.source)) return c.source;
  for (const k of ["node", "variable", "input"]) if (k in c) return k;
  return "custom";
}

function conditionRow(rowPath, obj, n, ctx, parts) {
  const label = `Condition ${n + 1}`;
  const source = sourceOf(obj);
  const setRow = (v) => setValue(rowPath(), v, { coalesce: false });
  const row = h("div", { class: "check-row", dataset: { path: rowPath() }, role: "group", "aria-label": label });
  if (source === "custom") {
    const input = small("input", { type: "text", class: "code-input", "aria-label": `${label} (JSON)`, spellcheck: "false" });
    const draw = bindText(input, rowPath, asJson);
    parts.push({ update: (s) => draw(s) });
    row.append(h("span", { class: "muted small" }, "Written as JSON:"), input, removeButton(label, ctx, n));
    return row;
  }
  const cur = () => getIn(parts.state.flow, rowPath()) || {};
  const srcSel = select(SOURCES, `${label} source`, source);
  srcSel.addEventListener("change", () => {
    const src = srcSel.value;
    const first = src === "node" ? ctx.earlierIds()[0] || "" : "";
    setRow(src === "node" ? { source: src, node: first, httpStatusCode: 200 } : { source: src, [src]: "", exists: true });
  });
  row.append(srcSel);
  if (source === "node") {
    const ids = ctx.earlierIds();
    const name = obj.node || "";
    const options = [...new Set([...ids, name].filter(Boolean))].map((id) => [id, id]);
    const nodeSel = select(options.length ? options : [["", "(no earlier step)"]], `${label} step`, name);
    nodeSel.addEventListener("change", () => setRow({ ...cur(), node: nodeSel.value }));
    parts.push({ update: (s) => (nodeSel.value = getIn(s.flow, `${rowPath()}.node`) || "") });
    const test = "httpStatusCode" in obj || "statusCode" in obj ? "status" : "field";
    const testSel = select([["status", "status code"], ["field", "field"]], `${label} test`, test);
    testSel.addEventListener("change", () => {
      const base = { source: "node", node: cur().node || nodeSel.value };
      setRow(testSel.value === "status" ? { ...base, httpStatusCode: 200 } : { ...base, field: ".", exists: true });
    });
    row.append(nodeSel, testSel);
    if (test === "status") {
      const key = "httpStatusCode" in obj ? "httpStatusCode" : "statusCode";
      const input = small("input", { type: "text", "aria-label": `${label} status code`, placeholder: "200" });
      const draw = bindText(input, () => `${rowPath()}.${key}`, condStatusCodec);
      parts.push({ update: (s) => draw(s) });
      row.append(h("span", { class: "muted small" }, "is"), input);
    } else {
      row.append(fieldInput(rowPath, label, ctx.pathList(name)), opsEditor(rowPath, obj, label, setRow, parts));
    }
  } else {
    const input = small("input", {
      type: "text",
      "aria-label": `${label} ${source === "variable" ? "variable" : "prompt key"}`,
      placeholder: source === "variable" ? "variable name" : "prompt key",
      list: source === "variable" ? ctx.variableList() : ctx.inputList(),
      spellcheck: "false",
      autocomplete: "off",
    });
    const draw = bindText(input, () => `${rowPath()}.${source}`, asText);
    parts.push({ update: (s) => draw(s) });
    row.append(input, fieldInput(rowPath, label, null), opsEditor(rowPath, obj, label, setRow, parts));
  }
  row.append(removeButton(label, ctx, n));
  return row;

  function fieldInput(pathFn, lbl, list) {
    const f = small("input", { type: "text", "aria-label": `${lbl} field`, placeholder: ". (the whole value)", list, spellcheck: "false", autocomplete: "off" });
    const draw = bindText(f, () => `${pathFn()}.field`, asText);
    parts.push({ update: (s) => draw(s) });
    return f;
  }
}

// ---- the list ------------------------------------------------------------------------

// kind: "validation" | "condition"; ctx: {nodeIndex() (-1 for defaults)}
export function checksField(label, path, { kind = "validation", nodeIndex = () => -1, hint } = {}) {
  const wrap = h("div", { class: "field wide checks-field", dataset: { path: path() } });
  const rowsEl = h("div", { class: "check-rows" });
  const none = h("p", { class: "muted small" });
  const jsonId = nextId("json");
  const json = h("textarea", { id: jsonId, rows: 3, class: "code-input", spellcheck: "false", dataset: { rows: "3" } });
  const jsonErr = h("p", { class: "field-error local", hidden: true, role: "alert" });
  const jsonBox = h("div", { class: "checks-json", hidden: true }, h("label", { for: jsonId, class: "visually-hidden" }, `${label} (JSON)`), json, jsonErr);
  const drawJson = bindText(json, path, asJson);
  let asJsonMode = false;
  const toggle = h("button", { type: "button", class: "btn small ghost", "aria-pressed": "false" }, "Edit as JSON");
  let parts = [];
  let signature = null;
  let state = null;

  const s0 = () => state;
  // Suggestion lists are filled again on every draw: responses become known later.
  const lists = new Map();
  const list = (id, values) => {
    lists.set(id, values);
    return datalist(id, values()).id;
  };
  const ctx = {
    remove(n) {
      const list = (getIn(s0().flow, path()) || []).slice();
      list.splice(n, 1);
      setValue(path(), list.length ? list : undefined, { coalesce: false, label: "remove check" });
      wrap.querySelector(".add-check")?.focus();
    },
    earlierIds() {
      const nodes = (s0().flow && s0().flow.nodes) || [];
      const i = nodeIndex();
      return nodes.slice(0, i < 0 ? 0 : i).map((n) => n && n.id).filter(Boolean);
    },
    known(id) {
      return (s0().known || {})[id];
    },
    // Paths seen in the response of this step (validations) or of `id` (conditions).
    pathList(id) {
      const nodes = (s0().flow && s0().flow.nodes) || [];
      const target = id || (nodes[nodeIndex()] || {}).id;
      return list(`paths-${target || "none"}`, () => {
        const k = target ? ctx.known(target) : null;
        return k ? pathsOf(k.body) : [];
      });
    },
    headerList() {
      const nodes = (s0().flow && s0().flow.nodes) || [];
      const target = (nodes[nodeIndex()] || {}).id;
      return list(`headers-${target || "none"}`, () => {
        const k = target ? ctx.known(target) : null;
        return k ? Object.keys(k.headers || {}) : ["Content-Type", "Location"];
      });
    },
    variableList() {
      return list("variables-list", () => Object.keys((s0().flow && s0().flow.variables) || {}));
    },
    inputList() {
      return list(`inputs-${nodeIndex()}`, () => {
        const nodes = (s0().flow && s0().flow.nodes) || [];
        const keys = new Set();
        nodes.slice(0, nodeIndex() + 1).forEach((n) => Object.keys((n && n.userPrompts) || {}).forEach((k) => keys.add(k)));
        return [...keys];
      });
    },
  };

  const add = h(
    "button",
    {
      type: "button",
      class: "btn small ghost add-check",
      onclick: () => {
        const list = getIn(s0().flow, path());
        const items = Array.isArray(list) ? list : [];
        let item;
        if (kind === "condition") {
          const first = ctx.earlierIds().slice(-1)[0];
          item = first ? { source: "node", node: first, httpStatusCode: 200 } : { source: "variable", variable: "", exists: true };
        } else {
          item = items.some((v) => v && "httpStatusCode" in v) ? { jsonpath: ".", exists: true } : { httpStatusCode: 200 };
        }
        setValue(path(), [...items, item], { coalesce: false, label: kind === "condition" ? "add condition" : "add check" });
        const rows = rowsEl.querySelectorAll(".check-row");
        rows[rows.length - 1]?.querySelector("select, input")?.focus();
      },
    },
    kind === "condition" ? "+ Add condition" : "+ Add check",
  );
  toggle.addEventListener("click", () => {
    asJsonMode = !asJsonMode;
    draw(state, true);
    (asJsonMode ? json : rowsEl.querySelector("select, input") || add).focus();
  });
  append(wrap, [
    h("div", { class: "kv-head" }, h("span", { class: "field-label" }, label), h("span", { class: "kv-tools" }, toggle)),
    hint ? h("span", { class: "field-hint" }, hint) : null,
    rowsEl,
    none,
    h("div", { class: "checks-add" }, add),
    jsonBox,
  ]);

  function draw(s, force = false) {
    state = s;
    parts.state = s;
    const p = path();
    wrap.dataset.path = p;
    const draft = s.drafts[p];
    // Text that does not parse has no rows to show: the JSON stays open until it does.
    const jsonMode = asJsonMode || Boolean(draft);
    toggle.setAttribute("aria-pressed", String(jsonMode));
    toggle.disabled = Boolean(draft);
    jsonBox.hidden = !jsonMode;
    rowsEl.hidden = jsonMode;
    add.parentElement.hidden = jsonMode;
    if (jsonMode) {
      none.hidden = true;
      drawJson(s, jsonBox);
      return;
    }
    const list = getIn(s.flow, p);
    const items = Array.isArray(list) ? list : [];
    const sig = JSON.stringify(items.map((v) => (kind === "condition" ? [sourceOf(v), v && ("httpStatusCode" in v || "statusCode" in v)] : kindOf(v))).concat(items.map(opsOf)));
    if (force || sig !== signature || !equal(ctx.earlierIds(), draw.ids)) {
      signature = sig;
      draw.ids = ctx.earlierIds();
      lists.clear();
      const focused = rowsEl.contains(document.activeElement) ? [...rowsEl.querySelectorAll("input, select, textarea, button")].indexOf(document.activeElement) : -1;
      parts = [];
      parts.state = s;
      rowsEl.replaceChildren(
        ...items.map((v, n) => {
          const rowPath = () => `${path()}[${n}]`;
          return kind === "condition" ? conditionRow(rowPath, v || {}, n, ctx, parts) : validationRow(rowPath, v || {}, n, ctx, parts);
        }),
      );
      if (focused >= 0) rowsEl.querySelectorAll("input, select, textarea, button")[focused]?.focus();
    }
    for (const part of parts) part.update(s);
    for (const [id, values] of lists) datalist(id, values());
    none.hidden = items.length > 0;
    none.textContent =
      kind === "condition"
        ? "No conditions: the step always runs."
        : nodeIndex() >= 0
          ? "No checks of its own: the flow's default checks apply (else status 200)."
          : "No default checks: steps without checks expect status 200.";
  }

  return { el: wrap, update: (s) => draw(s) };
}

