// Form controls bound to a path of the flow. Each builder returns {el, update(state)}:
// typing dispatches an edit (or, for text that does not parse yet, a draft), and
// update() draws the store's value into the control in place — never over what the
// person is typing, so focus and the caret survive every redraw.

import { h } from "./dom.js";
import { setDraft, setValue } from "./state.js";
import { equal, getIn } from "./store.js";

let uid = 0;
export const nextId = (p = "f") => `${p}-${++uid}`;

// A control's text for the store's value at path (or the draft kept there).
function shown(s, path, format) {
  const draft = s.drafts[path];
  return draft ? String(typeof draft.raw === "string" ? draft.raw : "") : format(getIn(s.flow, path));
}

// Keep a focused control's text when it already means the stored value ("1." for 1).
function keepTyped(control, s, path, parse) {
  if (document.activeElement !== control || s.drafts[path]) return false;
  try {
    return equal(parse(control.value), getIn(s.flow, path));
  } catch {
    return false;
  }
}

// The local error line of a field: a draft's reason.
function draftError(wrap, control, s, path) {
  const err = wrap.querySelector(":scope > .field-error.local");
  const draft = s.drafts[path];
  if (err) {
    err.hidden = !draft;
    err.textContent = draft ? draft.error : "";
  }
  if (draft) control.setAttribute("aria-invalid", "true");
  else if (!control.classList.contains("remote-invalid")) control.removeAttribute("aria-invalid");
}

function fieldWrap(label, control, { hint, wide, path } = {}) {
  control.id = control.id || nextId();
  return h(
    "div",
    { class: `field${wide ? " wide" : ""}`, dataset: { path: path || "" } },
    h("label", { for: control.id }, label),
    control,
    hint ? h("span", { class: "field-hint" }, hint) : null,
    h("p", { class: "field-error local", hidden: true, role: "alert" }),
  );
}

export const asText = {
  parse: (t) => (t === "" ? undefined : t),
  format: (v) => (v === undefined || v === null ? "" : String(v)),
};

export const asNumber = {
  parse: (t) => {
    if (t.trim() === "") return undefined;
    const n = Number(t);
    if (!Number.isFinite(n)) throw new Error("Not a number");
    return n;
  },
  format: (v) => (v === undefined || v === null ? "" : String(v)),
};

// Names written as "a, b" (a flow's `secrets`); none is no list at all.
export const asNames = {
  parse: (t) => {
    const names = t.split(",").map((n) => n.trim()).filter(Boolean);
    const bad = names.find((n) => !/^[A-Za-z0-9_-]+$/.test(n));
    if (bad) throw new Error(`Not a variable name: ${bad} (letters, digits, _ and -)`);
    return names.length ? [...new Set(names)] : undefined;
  },
  format: (v) => (Array.isArray(v) ? v.join(", ") : ""),
};

function compactJson(value) {
  const inline = (v) => {
    if (Array.isArray(v)) return `[${v.map(inline).join(", ")}]`;
    if (v && typeof v === "object") return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(", ")}}`;
    return JSON.stringify(v);
  };
  if (Array.isArray(value) && value.every((v) => JSON.stringify(v).length <= 100)) {
    return value.length ? `[\n${value.map((v) => `  ${inline(v)}`).join(",\n")}\n]` : "[]";
  }
  return JSON.stringify(value, null, 2);
}

export const asJson = {
  parse: (t) => {
    if (t.trim() === "") return undefined;
    try {
      return JSON.parse(t);
    } catch (e) {
      throw new Error(`Not valid JSON: ${e.message}`);
    }
  },
  format: (v) => (v === undefined ? "" : compactJson(v)),
};

// A text control (input or textarea) bound to path(); `codec` turns text into a value.
export function bindText(control, path, codec = asText) {
  control.addEventListener("input", () => {
    const p = path();
    let value;
    try {
      value = codec.parse(control.value);
    } catch (e) {
      setDraft(p, control.value, e.message, { origin: control });
      return;
    }
    setValue(p, value, { origin: control });
  });
  return (s, wrap) => {
    const p = path();
    if (!keepTyped(control, s, p, codec.parse)) {
      const want = shown(s, p, codec.format);
      if (control.value !== want) control.value = want;
    }
    if (control.tagName === "TEXTAREA") fit(control);
    if (wrap) draftError(wrap, control, s, p);
  };
}

function fit(ta) {
  const min = Number(ta.dataset.rows || 2);
  const lines = ta.value.split("\n").length;
  ta.rows = Math.min(16, Math.max(min, lines));
}

export function textField(label, path, { codec = asText, placeholder, hint, wide, ph = false, type = "text", multiline = false, rows = 2, list } = {}) {
  const control = multiline
    ? h("textarea", { rows, spellcheck: "false", class: `code-input${ph ? " ph-input" : ""}`, placeholder, dataset: { rows: String(rows) } })
    : h("input", { type, placeholder, spellcheck: "false", autocomplete: "off", class: ph ? "ph-input" : null, list });
  const el = fieldWrap(label, control, { hint, wide, path: path() });
  const draw = bindText(control, path, codec);
  return {
    el,
    control,
    update(s) {
      el.dataset.path = path();
      draw(s, el);
    },
  };
}

export function selectField(label, path, options, { hint, wide, fallback = "" } = {}) {
  const control = h(
    "select",
    null,
    options.map(([value, text]) => h("option", { value }, text)),
  );
  control.addEventListener("change", () => setValue(path(), control.value === "" ? undefined : control.value, { origin: control, coalesce: false }));
  const el = fieldWrap(label, control, { hint, wide, path: path() });
  return {
    el,
    control,
    update(s) {
      el.dataset.path = path();
      const v = getIn(s.flow, path());
      const want = v === undefined || v === null ? fallback : String(v);
      if (![...control.options].some((o) => o.value === want)) control.append(h("option", { value: want }, want));
      if (control.value !== want) control.value = want;
    },
  };
}

export function checkField(label, path, { hint } = {}) {
  const control = h("input", { type: "checkbox", id: nextId("c") });
  control.addEventListener("change", () => setValue(path(), control.checked ? true : undefined, { origin: control, coalesce: false }));
  const el = h(
    "div",
    { class: "field check-field", dataset: { path: path() } },
    h("label", { class: "check", for: control.id }, control, label),
    hint ? h("span", { class: "field-hint" }, hint) : null,
  );
  return {
    el,
    control,
    update(s) {
      el.dataset.path = path();
      const on = getIn(s.flow, path()) === true;
      if (control.checked !== on) control.checked = on;
    },
  };
}

// Name/value rows for headers, variables and prompts. Rows are the person's; the
// object at path is what they make. A row with a value and no name, or a name used
// twice, is a draft (kept, not saved) until it is fixed.
export function kvField(label, path, { keyLabel = "Name", valueLabel = "Value", addLabel = "Add", ph = true, list } = {}) {
  const wrap = h("div", { class: "field wide kv-field", dataset: { path: path() } });
  const rowsEl = h("div", { class: "kv-rows" });
  const err = h("p", { class: "field-error local", hidden: true, role: "alert" });
  let rows = [];
  let drawnFrom;

  const toRows = (obj) =>
    Object.entries(obj && typeof obj === "object" ? obj : {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v), typeof v !== "string"]);

  const commit = () => {
    const out = {};
    let problem = null;
    for (const [k, v, isTyped] of rows) {
      if (!k) {
        if (v) problem = `A row has a ${valueLabel.toLowerCase()} but no ${keyLabel.toLowerCase()}.`;
        continue;
      }
      if (k in out) problem = `${keyLabel} "${k}" is used twice.`;
      // A value that was not a string (a number variable) keeps its JSON type as
      // long as the text still parses.
      let value = v;
      if (isTyped) {
        try {
          value = JSON.parse(v);
        } catch {
          value = v;
        }
      }
      out[k] = value;
    }
    const p = path();
    if (problem) setDraft(p, rows.map((r) => r.slice()), problem, { origin: wrap });
    else setValue(p, Object.keys(out).length ? out : undefined, { origin: wrap });
  };

  const draw = () => {
    const focused = document.activeElement;
    const at = rowsEl.contains(focused) ? [...rowsEl.querySelectorAll("input")].indexOf(focused) : -1;
    rowsEl.replaceChildren(
      ...rows.map((row, i) => {
        const key = h("input", { type: "text", value: row[0], placeholder: keyLabel, spellcheck: "false", autocomplete: "off", "aria-label": `${label} ${keyLabel.toLowerCase()} ${i + 1}`, list });
        const value = h("input", { type: "text", value: row[1], placeholder: valueLabel, spellcheck: "false", autocomplete: "off", class: ph ? "ph-input" : null, "aria-label": `${label} ${valueLabel.toLowerCase()} ${i + 1}` });
        key.addEventListener("input", () => {
          row[0] = key.value;
          commit();
        });
        value.addEventListener("input", () => {
          row[1] = value.value;
          commit();
        });
        return h(
          "div",
          { class: "kv-row" },
          key,
          value,
          h(
            "button",
            {
              type: "button",
              class: "btn icon ghost small",
              "aria-label": `Remove ${label} row ${i + 1}`,
              onclick: () => {
                rows.splice(i, 1);
                commit();
                draw();
                (rowsEl.querySelectorAll("input")[Math.max(0, i * 2 - 2)] || addBtn).focus();
              },
            },
            "✕",
          ),
        );
      }),
    );
    if (at >= 0) rowsEl.querySelectorAll("input")[at]?.focus();
  };

  const addBtn = h(
    "button",
    {
      type: "button",
      class: "btn small ghost",
      onclick: () => {
        rows.push(["", "", false]);
        draw();
        rowsEl.lastChild?.querySelector("input")?.focus();
      },
    },
    `+ ${addLabel}`,
  );
  wrap.append(h("div", { class: "kv-head" }, h("span", { class: "field-label" }, label), addBtn), rowsEl, err);

  return {
    el: wrap,
    update(s) {
      const p = path();
      wrap.dataset.path = p;
      const draft = s.drafts[p];
      const source = draft ? draft.raw : getIn(s.flow, p);
      // Redraw only when the store holds something these rows would not make (undo,
      // the JSON view, another flow): rows being typed stay as they are.
      if (source !== drawnFrom) {
        const fresh = draft ? draft.raw.map((r) => r.slice()) : toRows(source);
        const named = (list) => Object.fromEntries(list.filter((r) => r[0]).map((r) => [r[0], r[1]]));
        const same = draft ? equal(draft.raw, rows) : equal(named(rows), named(fresh));
        if (!same) {
          rows = fresh;
          draw();
        }
        drawnFrom = source;
      }
      err.hidden = !draft;
      err.textContent = draft ? draft.error : "";
    },
  };
}

// Path suggestions for a datalist: `.a.b`, `.items[0].id`, `.items | length`.
export function pathsOf(value, prefix = "", depth = 0, out = []) {
  if (depth > 3 || out.length > 60 || value === null || typeof value !== "object") return out;
  if (Array.isArray(value)) {
    out.push(`${prefix || "."} | length`);
    if (value.length) {
      out.push(`${prefix}[0]`);
      pathsOf(value[0], `${prefix}[0]`, depth + 1, out);
    }
    return out;
  }
  for (const [k, v] of Object.entries(value)) {
    if (!/^[A-Za-z0-9_-]+$/.test(k)) continue;
    out.push(`${prefix}.${k}`);
    pathsOf(v, `${prefix}.${k}`, depth + 1, out);
  }
  return out;
}

export function datalist(id, values) {
  let list = document.getElementById(id);
  if (!list) {
    list = h("datalist", { id });
    document.body.append(list);
  }
  const key = values.join("\n");
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...values.map((v) => h("option", { value: v })));
  }
  return list;
}

export function updateAll(parts, s) {
  for (const p of parts) p.update(s);
}

