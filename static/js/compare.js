// Two runs side by side: which steps, statuses, durations and values changed.
// Pure: takes two run models (runmodel.js) and returns rows to draw.

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
  const subsA = new Map(((a && a.substitutions) || []).map((s) => [s.placeholder, s.value]));
  const subsB = new Map(((b && b.substitutions) || []).map((s) => [s.placeholder, s.value]));
  for (const key of new Set([...subsA.keys(), ...subsB.keys()])) {
    const x = subsA.get(key);
    const y = subsB.get(key);
    if (JSON.stringify(x) !== JSON.stringify(y)) changes.push({ where: key, a: show(x), b: show(y) });
  }
  const bodyA = a && a.response ? flatten(a.response.body) : new Map();
  const bodyB = b && b.response ? flatten(b.response.body) : new Map();
  for (const key of new Set([...bodyA.keys(), ...bodyB.keys()])) {
    const x = bodyA.get(key);
    const y = bodyB.get(key);
    if (JSON.stringify(x) !== JSON.stringify(y)) changes.push({ where: `response ${key}`, a: show(x), b: show(y) });
  }
  const vA = new Map(((a && a.validations) || []).map((v) => [v.message || v.type, v.passed]));
  const vB = new Map(((b && b.validations) || []).map((v) => [v.message || v.type, v.passed]));
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
