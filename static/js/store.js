// One store for Studio. The flow is changed only by dispatch(command): a command is
// a list of reversible patches at paths (the `data-path` syntax: `nodes[2].url`),
// so undo and redo replay inverse patches, and every view and autosave subscribe.
//
// State: {flow, keys, drafts, file, saved, ui, env, runs}
//  - flow: the flow document (plain data, never changed in place)
//  - keys: one stable key per node (views keep a step's elements by key, not place)
//  - drafts: {path: {raw, error}} for text that does not parse yet; never saved as
//    something else, kept by autosave, and undone like any other edit
//  - saved: the flow as last loaded or saved (JSON text), to tell unsaved changes
//  - ui, env, runs: view state that undo does not touch

let keySeq = 0;
export const newKey = () => `k${++keySeq}`;

// ---- paths -------------------------------------------------------------------------

// "nodes[2].validations[0].jsonpath" -> ["nodes", 2, "validations", 0, "jsonpath"].
// A key that is not a plain name is written ["like this"].
export function parsePath(path) {
  const keys = [];
  const re = /(?:^|\.)([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:\\.|[^"\\])*")\]/gy;
  let m;
  while (re.lastIndex < path.length && (m = re.exec(path))) {
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else keys.push(JSON.parse(m[3]));
  }
  if (re.lastIndex !== path.length && path.length) throw new Error(`bad path ${path}`);
  return keys;
}

export function formatPath(keys) {
  let out = "";
  for (const k of keys) {
    if (typeof k === "number") out += `[${k}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(k)}]`;
  }
  return out;
}

export function getIn(value, path) {
  const keys = Array.isArray(path) ? path : parsePath(path);
  let cur = value;
  for (const k of keys) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[k];
  }
  return cur;
}

// A copy of `value` with `fn(old)` at `keys` (structural sharing; undefined deletes).
function updateIn(value, keys, fn) {
  if (!keys.length) return fn(value);
  const [k, ...rest] = keys;
  const base = value !== null && typeof value === "object" ? value : typeof k === "number" ? [] : {};
  const copy = Array.isArray(base) ? base.slice() : { ...base };
  const next = updateIn(base[k], rest, fn);
  if (next === undefined && !Array.isArray(copy)) delete copy[k];
  else copy[k] = next;
  return copy;
}

export const setIn = (value, path, v) => updateIn(value, Array.isArray(path) ? path : parsePath(path), () => v);

export function equal(a, b) {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

// ---- patches -----------------------------------------------------------------------
// {op: "set", path, value}                  value undefined removes the key
// {op: "insert", path, index, value, key?}  into the array at path
// {op: "remove", path, index}
// {op: "move", path, from, to}
// Each apply returns the state and the patch that undoes it.

function arrayAt(flow, path) {
  const arr = getIn(flow, path);
  return Array.isArray(arr) ? arr : [];
}

// Node keys follow structural edits of `nodes`; other arrays have none.
function isNodes(path) {
  return path === "nodes";
}

function keysFor(oldNodes, oldKeys, nodes) {
  // A whole new list (JSON view, load): a node keeps its key when its id is unique
  // on both sides, so the form keeps its elements (and focus) across the change.
  const byId = new Map();
  const seen = new Map();
  (oldNodes || []).forEach((n, i) => {
    const id = n && n.id;
    seen.set(id, (seen.get(id) || 0) + 1);
    byId.set(id, oldKeys[i]);
  });
  const used = new Set();
  return (nodes || []).map((n, i) => {
    const id = n && n.id;
    let key = seen.get(id) === 1 ? byId.get(id) : undefined;
    if (!key && oldNodes && oldNodes[i] && oldNodes[i] === n) key = oldKeys[i];
    if (!key || used.has(key)) key = newKey();
    used.add(key);
    return key;
  });
}

export function applyPatch(state, patch) {
  const { flow, keys } = state;
  switch (patch.op) {
    case "set": {
      const path = parsePath(patch.path);
      const old = getIn(flow, path);
      const next = setIn(flow, path, patch.value);
      let nextKeys = keys;
      if (patch.path === "" || patch.path === "nodes") {
        nextKeys = keysFor(flow && flow.nodes, keys, next && next.nodes);
      }
      const inverse = { op: "set", path: patch.path, value: old };
      if (nextKeys !== keys) inverse.keys = keys;
      if (patch.keys) nextKeys = patch.keys;
      return [{ ...state, flow: next, keys: nextKeys }, inverse];
    }
    case "insert": {
      const arr = arrayAt(flow, patch.path).slice();
      const index = Math.max(0, Math.min(patch.index, arr.length));
      arr.splice(index, 0, patch.value);
      let nextKeys = keys;
      if (isNodes(patch.path)) {
        nextKeys = keys.slice();
        nextKeys.splice(index, 0, patch.key || newKey());
      }
      return [{ ...state, flow: setIn(flow, patch.path, arr), keys: nextKeys }, { op: "remove", path: patch.path, index }];
    }
    case "remove": {
      const arr = arrayAt(flow, patch.path).slice();
      const [value] = arr.splice(patch.index, 1);
      let nextKeys = keys;
      let key;
      if (isNodes(patch.path)) {
        nextKeys = keys.slice();
        [key] = nextKeys.splice(patch.index, 1);
      }
      return [
        { ...state, flow: setIn(flow, patch.path, arr), keys: nextKeys },
        { op: "insert", path: patch.path, index: patch.index, value, key },
      ];
    }
    case "move": {
      const arr = arrayAt(flow, patch.path).slice();
      const [value] = arr.splice(patch.from, 1);
      arr.splice(patch.to, 0, value);
      let nextKeys = keys;
      if (isNodes(patch.path)) {
        nextKeys = keys.slice();
        const [k] = nextKeys.splice(patch.from, 1);
        nextKeys.splice(patch.to, 0, k);
      }
      return [
        { ...state, flow: setIn(flow, patch.path, arr), keys: nextKeys },
        { op: "move", path: patch.path, from: patch.to, to: patch.from },
      ];
    }
    default:
      throw new Error(`unknown patch ${patch.op}`);
  }
}

// Drafts sit at paths too: a structural edit of an array moves the drafts of its
// elements with them (a half-typed body stays with its step when steps move).
function shiftDrafts(drafts, patch) {
  if (patch.op === "set") {
    // A value set at a path replaces whatever was half-typed below it.
    const out = {};
    for (const [p, d] of Object.entries(drafts)) {
      if (!(p === patch.path || p.startsWith(`${patch.path}.`) || p.startsWith(`${patch.path}[`) || patch.path === "")) out[p] = d;
    }
    return out;
  }
  const prefix = `${patch.path}[`;
  const out = {};
  for (const [p, d] of Object.entries(drafts)) {
    if (!p.startsWith(prefix)) {
      out[p] = d;
      continue;
    }
    const close = p.indexOf("]", prefix.length);
    let i = Number(p.slice(prefix.length, close));
    const rest = p.slice(close + 1);
    if (patch.op === "insert" && i >= patch.index) i += 1;
    else if (patch.op === "remove") {
      if (i === patch.index) continue;
      if (i > patch.index) i -= 1;
    } else if (patch.op === "move") {
      if (i === patch.from) i = patch.to;
      else if (patch.from < i && i <= patch.to) i -= 1;
      else if (patch.to <= i && i < patch.from) i += 1;
    }
    out[`${prefix}${i}]${rest}`] = d;
  }
  return out;
}

// ---- the store ---------------------------------------------------------------------

const COALESCE_MS = 1200;
const MAX_UNDO = 300;

export function createStore(initial) {
  let state = { flow: null, keys: [], drafts: {}, file: null, saved: null, ui: {}, env: {}, runs: {}, ...initial };
  const listeners = new Set();
  let undoStack = [];
  let redoStack = [];

  function emit(prev, meta) {
    for (const fn of [...listeners]) fn(state, prev, meta);
  }

  // Apply patches and draft changes; returns the record undo needs.
  function run(patches, draftChanges) {
    let s = state;
    const inverse = [];
    let drafts = s.drafts;
    for (const p of patches) {
      const [next, inv] = applyPatch(s, p);
      drafts = shiftDrafts(drafts, p);
      s = next;
      inverse.unshift(inv);
    }
    if (draftChanges) {
      drafts = { ...drafts };
      for (const [p, d] of Object.entries(draftChanges)) {
        if (d === null || d === undefined) delete drafts[p];
        else drafts[p] = d;
      }
    }
    return { next: { ...s, drafts }, inverse };
  }

  const store = {
    get: () => state,

    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    // command: {patches: [...], drafts?: {path: draft|null}, label?, coalesce?, origin?}
    dispatch(command) {
      const before = state;
      const { next, inverse } = run(command.patches || [], command.drafts);
      // Nothing changed (a field set to what it held): no undo step, no redraw.
      if (equal(next.flow, before.flow) && equal(next.drafts, before.drafts)) return;
      state = next;
      const entry = {
        label: command.label || "edit",
        patches: command.patches || [],
        inverse,
        draftsBefore: before.drafts,
        draftsAfter: state.drafts,
        coalesce: command.coalesce || null,
        at: Date.now(),
      };
      const top = undoStack[undoStack.length - 1];
      if (top && entry.coalesce && top.coalesce === entry.coalesce && entry.at - top.at < COALESCE_MS) {
        top.patches = [...top.patches, ...entry.patches];
        top.inverse = [...entry.inverse, ...top.inverse];
        top.draftsAfter = entry.draftsAfter;
        top.at = entry.at;
      } else {
        undoStack.push(entry);
        if (undoStack.length > MAX_UNDO) undoStack.shift();
      }
      redoStack = [];
      emit(before, { origin: command.origin, label: entry.label, kind: "edit" });
    },

    undo() {
      const entry = undoStack.pop();
      if (!entry) return null;
      const before = state;
      const { next } = run(entry.inverse);
      state = { ...next, drafts: entry.draftsBefore };
      redoStack.push(entry);
      emit(before, { label: entry.label, kind: "undo" });
      return entry.label;
    },

    redo() {
      const entry = redoStack.pop();
      if (!entry) return null;
      const before = state;
      const { next } = run(entry.patches);
      state = { ...next, drafts: entry.draftsAfter };
      undoStack.push(entry);
      emit(before, { label: entry.label, kind: "redo" });
      return entry.label;
    },

    canUndo: () => undoStack.length > 0,
    canRedo: () => redoStack.length > 0,

    // A new document (open, new, import, restore): history starts over.
    load({ flow, file = null, saved = null, drafts = {} }) {
      const before = state;
      state = { ...state, flow, keys: (flow && Array.isArray(flow.nodes) ? flow.nodes : []).map(() => newKey()), drafts, file, saved };
      undoStack = [];
      redoStack = [];
      emit(before, { kind: "load" });
    },

    // View state, files and runs: not part of undo.
    set(partial, meta = {}) {
      const before = state;
      state = { ...state, ...partial };
      emit(before, { kind: "set", ...meta });
    },

    update(slice, fn, meta = {}) {
      const before = state;
      state = { ...state, [slice]: fn(state[slice]) };
      emit(before, { kind: "set", slice, ...meta });
    },
  };
  return store;
}
