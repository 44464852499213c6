// Two runs side by side: which steps, statuses, durations and values changed.
// Pure: takes two run models (runmodel.js) and returns rows to draw. Values of
// secrets are never shown, only that they changed.

import { isSecret, MASK } from "./cards.js";

const MAX_CHANGES = 12;

function flatten(value, prefix = "", depth = 0, out = new Map()) {
  if (out.size > 400) return out;
  if (value === null || typeof value !== "object" || depth > 4) {
    out.set(prefix || ".", value);
    return out;
  }
  if (Array.isArray(value)) {
    out.set(`${prefix || "."} | length`, value.length);
    value.slice(0, 20).forEach((v, i) => flatten(v, `${prefix}[${i}]`, depth + 1, out));
    return out;
  }
  const keys = Object.keys(value);
  if (!keys.length) out.set(prefix || ".", "{}");
  for (const k of keys) flatten(value[k], /^[A-Za-z0-9_-]+$/.test(k) ? `${prefix}.${k}` : `${prefix}[${JSON.stringify(k)}]`, depth + 1, out);
  return out;
}

const show = (v) => (v === undefined ? "—" : typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v));

function valueChanges(a, b) {
  const changes = [];
  const subs = (r) => new Map(((r && r.substitutions) || []).map((s) => [s.placeholder, s]));
  const subsA = subs(a);
  const subsB = subs(b);
  for (const key of new Set([...subsA.keys(), ...subsB.keys()])) {
    const x = subsA.get(key);
    const y = subsB.get(key);
    if (JSON.stringify(x && x.value) === JSON.stringify(y && y.value)) continue;
    const secret = isSecret(x || y);
    const value = (sub) => (!sub ? "—" : secret ? MASK : show(sub.value));
    changes.push({ where: secret ? `${key} (secret)` : key, a: value(x), b: value(y) });
  }
  const bodyA = a && a.response ? flatten(a.response.body) : new Map();
  const bodyB = b && b.response ? flatten(b.response.body) : new Map();
  for (const key of new Set([...bodyA.keys(), ...bodyB.keys()])) {
    const x = bodyA.get(key);
    const y = bodyB.get(key);
    if (JSON.stringify(x) !== JSON.stringify(y)) changes.push({ where: `response ${key}`, a: show(x), b: show(y) });
  }
  // A check is the same check in both runs when it looks at the same thing the same
  // way (its message holds the values, which differ).
  const checkKey = (v) => [v.type, v.path || "", v.operator || ""].join(" ").trim();
  const checks = (r) => new Map(((r && r.validations) || []).map((v) => [checkKey(v), v.passed]));
  const vA = checks(a);
  const vB = checks(b);
  for (const key of new Set([...vA.keys(), ...vB.keys()])) {
    if (vA.get(key) !== vB.get(key)) {
      const word = (p) => (p === undefined ? "—" : p ? "passed" : "failed");
      changes.push({ where: `check ${key}`, a: word(vA.get(key)), b: word(vB.get(key)) });
    }
  }
  return changes;
}

function entries(model) {
  const out = new Map();
  for (const s of model.steps) {
    if (s && s.record) out.set(s.record.id ?? `#${s.record.step}`, s.record);
  }
  return out;
}

export function compareRuns(a, b) {
  const ea = entries(a);
  const eb = entries(b);
  const ids = [...ea.keys(), ...[...eb.keys()].filter((k) => !ea.has(k))];
  const rows = ids.map((id) => {
    const x = ea.get(id);
    const y = eb.get(id);
    const changes = valueChanges(x, y);
    const statusA = x ? x.status : "absent";
    const statusB = y ? y.status : "absent";
    const httpA = x && x.response ? x.response.status : null;
    const httpB = y && y.response ? y.response.status : null;
    const dA = x && typeof x.duration === "number" ? x.duration : null;
    const dB = y && typeof y.duration === "number" ? y.duration : null;
    return {
      id,
      name: (x || y).name || id,
      statusA,
      statusB,
      httpA,
      httpB,
      durationA: dA,
      durationB: dB,
      statusChanged: statusA !== statusB || httpA !== httpB,
      changes: changes.slice(0, MAX_CHANGES),
      moreChanges: Math.max(0, changes.length - MAX_CHANGES),
      changed: statusA !== statusB || httpA !== httpB || changes.length > 0,
    };
  });
  return { rows, changed: rows.filter((r) => r.changed).length };
}
