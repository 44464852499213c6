// Environments: a switcher beside Go with the Flow (the run's `options.environment`)
// and an editor, where secret values show as dots until the person editing reveals
// them. Shown only when the server has environments.

import { api, config } from "./api.js";
import { ask } from "./dialogs.js";
import { $, clear, h, toast } from "./dom.js";
import { savePref, store } from "./state.js";

const wrap = $("#env-wrap");
const select = $("#env-select");
const dialog = $("#env-dialog");
const names = $("#env-names");
const editor = $("#env-editor");
const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const MASK = "••••";

async function refresh() {
  let list;
  try {
    list = (await api.environments()).environments || [];
  } catch {
    store.update("env", (env) => ({ ...env, available: false }));
    return;
  }
  store.update("env", (env) => ({ ...env, available: true, list, selected: list.some((e) => e.name === env.selected) ? env.selected : "" }));
}

function draw(env) {
  wrap.hidden = !env.available;
  if (!env.available) return;
  const opts = [["", "No environment"], ...env.list.map((e) => [e.name, e.missing && e.missing.length ? `${e.name} (needs ${e.missing.length} secret${e.missing.length > 1 ? "s" : ""})` : e.name])];
  const key = JSON.stringify(opts);
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    select.replaceChildren(...opts.map(([v, t]) => h("option", { value: v }, t)));
  }
  select.value = env.selected;
}

// The run options an environment adds: its name, and values for secrets it declares
// without a value (asked now, never kept). null when the person cancels.
export async function environmentOptions() {
  const env = store.get().env;
  if (!env.available || !env.selected) return {};
  const found = env.list.find((e) => e.name === env.selected);
  if (!found) return {};
  const missing = found.missing || [];
  if (!missing.length) return { environment: found.name };
  const inputs = missing.map((name) => h("input", { type: "password", id: `env-secret-${name}`, autocomplete: "off", "aria-label": name }));
  const content = h(
    "div",
    { class: "env-secrets" },
    missing.map((name, i) => h("div", { class: "field" }, h("label", { for: inputs[i].id }, name), inputs[i])),
  );
  const ok = await ask({
    heading: `Secrets for ${found.name}`,
    message: "This environment declares these secrets without values. They are used for this run only.",
    content,
    okLabel: "Run",
    validate: () => (inputs.some((i) => !i.value) ? "Every secret needs a value." : null),
  });
  if (!ok) return null;
  return { environment: found.name, variables: Object.fromEntries(missing.map((name, i) => [name, inputs[i].value])) };
}

// ---- the editor -----------------------------------------------------------------------

function row(name = "", value = "", secret = false) {
  const key = h("input", { type: "text", value: name, placeholder: "Name", "aria-label": "Variable name", spellcheck: "false", autocomplete: "off" });
  const val = h("input", { type: secret ? "password" : "text", value, placeholder: "Value", "aria-label": `Value of ${name || "new variable"}`, spellcheck: "false", autocomplete: "off" });
  val.dataset.original = value;
  const reveal = h("button", { type: "button", class: "btn small ghost", "aria-pressed": "false", hidden: !secret }, "Reveal");
  const isSecret = h("input", { type: "checkbox", "aria-label": `${name || "new variable"} is a secret` });
  isSecret.checked = secret;
  reveal.addEventListener("click", () => {
    const shown = val.type === "text";
    val.type = shown ? "password" : "text";
    reveal.setAttribute("aria-pressed", String(!shown));
    reveal.textContent = shown ? "Reveal" : "Hide";
  });
  isSecret.addEventListener("change", () => {
    val.type = isSecret.checked ? "password" : "text";
    reveal.hidden = !isSecret.checked;
    reveal.setAttribute("aria-pressed", "false");
    reveal.textContent = "Reveal";
  });
  key.addEventListener("input", () => {
    val.setAttribute("aria-label", `Value of ${key.value || "new variable"}`);
    isSecret.setAttribute("aria-label", `${key.value || "new variable"} is a secret`);
  });
  const el = h(
    "div",
    { class: "env-row" },
    key,
    val,
    reveal,
    h("label", { class: "check" }, isSecret, "secret"),
    h("button", { type: "button", class: "btn icon ghost small", "aria-label": "Remove variable", onclick: () => el.remove() }, "✕"),
  );
  el.read = () => ({ name: key.value.trim(), value: val.value, secret: isSecret.checked, untouched: val.value === val.dataset.original });
  return el;
}

async function edit(name) {
  clear(editor);
  let env = { name: "", variables: {}, secrets: [] };
  if (name) {
    try {
      env = await api.environment(name);
    } catch (err) {
      editor.append(h("p", { class: "card-error" }, `Could not read ${name}: ${err.message}`));
      return;
    }
  }
  for (const b of names.querySelectorAll("button[data-name]")) b.setAttribute("aria-current", String(b.dataset.name === name));
  const nameInput = h("input", { type: "text", id: "env-name", value: env.name || name || "", readonly: Boolean(name), spellcheck: "false", autocomplete: "off" });
  const rows = h("div", { class: "env-rows" });
  const secrets = new Set(env.secrets || []);
  const vars = env.variables || {};
  for (const key of new Set([...Object.keys(vars), ...secrets])) rows.append(row(key, vars[key] === undefined ? "" : String(vars[key]), secrets.has(key)));
  const err = h("p", { class: "field-error", hidden: true, role: "alert" });
  editor.append(
    h("div", { class: "field" }, h("label", { for: "env-name" }, "Environment name"), nameInput),
    h("div", { class: "kv-head" }, h("span", { class: "field-label" }, "Variables"), h("button", { type: "button", class: "btn small ghost", onclick: () => rows.append(row()) && rows.lastChild.querySelector("input").focus() }, "+ Variable")),
    rows,
    err,
    h(
      "div",
      { class: "dialog-actions" },
      name ? h("button", { type: "button", class: "btn ghost danger", onclick: () => remove(name) }, "Delete environment") : null,
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn primary", onclick: () => save(nameInput.value.trim(), rows, err, Boolean(name)) }, "Save environment"),
    ),
  );
  (name ? rows.querySelector("input") : nameInput)?.focus();
}

async function save(name, rows, err, existing) {
  const problem = (text) => {
    err.textContent = text;
    err.hidden = false;
  };
  if (!NAME_RE.test(name)) return problem("Use letters, digits, '_', '-' and '.' in the name.");
  const variables = {};
  const secrets = [];
  for (const el of rows.children) {
    const r = el.read();
    if (!r.name) continue;
    if (r.name in variables || secrets.includes(r.name)) return problem(`"${r.name}" is listed twice.`);
    if (r.secret) secrets.push(r.name);
    // A secret the server handed back masked, and not edited: not sent back as dots.
    if (r.secret && r.untouched && r.value === MASK) continue;
    variables[r.name] = r.value;
  }
  try {
    await api.saveEnvironment(name, { variables, secrets });
  } catch (e) {
    return problem(`Not saved: ${e.message}`);
  }
  toast(`Saved environment ${name}`, "success");
  await refresh();
  listNames();
  if (!existing) edit(name);
}

async function remove(name) {
  const ok = await ask({ heading: `Delete environment ${name}?`, message: "Its variables and secrets are removed from the workspace.", okLabel: "Delete", danger: true });
  if (!ok) return;
  try {
    await api.deleteEnvironment(name);
  } catch (e) {
    toast(`Delete failed: ${e.message}`, "error");
    return;
  }
  await refresh();
  listNames();
  clear(editor);
}

function listNames() {
  const env = store.get().env;
  names.replaceChildren(
    ...env.list.map((e) => h("li", null, h("button", { type: "button", class: "env-name", dataset: { name: e.name }, onclick: () => edit(e.name) }, e.name))),
    h("li", null, h("button", { type: "button", class: "btn small ghost", onclick: () => edit(null) }, "+ New environment")),
  );
}

export function initEnvironments() {
  store.subscribe((s, prev) => {
    if (s.env !== prev.env) draw(s.env);
  });
  draw(store.get().env);
  select.addEventListener("change", () => {
    savePref("environment", select.value);
    store.update("env", (env) => ({ ...env, selected: select.value }));
  });
  $("#btn-envs").addEventListener("click", async () => {
    await refresh();
    listNames();
    clear(editor);
    editor.append(h("p", { class: "muted" }, "Choose an environment to edit, or add one."));
    dialog.showModal();
    names.querySelector("button")?.focus();
  });
  $("#env-close").addEventListener("click", () => dialog.close());
  // Only a server with environments is asked (a 404 would be a failed request).
  if (config.environments) refresh();
}
