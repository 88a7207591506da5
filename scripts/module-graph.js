#!/usr/bin/env node
'use strict';
// The module graph of src/: which module refers to which (`use crate::X`,
// `crate::X::` anywhere in the code, `use crate::{X, Y::...}`), and whether
// it has a cycle. Comments and string literals are ignored.
//
//   node scripts/module-graph.js          edges, then what is wrong, if anything
//   node scripts/module-graph.js --check  only what is wrong (exit 1 if so)
//
// Wrong: a cycle, or a module importing one of a higher layer (LAYERS, as
// src/lib.rs describes them). A module not in LAYERS is held to the cycle
// check only, and named, so that it gets a layer.

const fs = require('node:fs');
const path = require('node:path');

const srcDir = path.join(__dirname, '..', 'src');

/** src/'s layers, lowest first; a module may import its own layer and
 *  lower ones. lib.rs, the crate root, declares them all. */
const LAYERS = [
  ['js', 'engine', 'errors', 'runtime', 'number_format'],
  ['handles', 'snapshot', 'key_cache', 'limits'],
  ['vm'],
  ['roots', 'keys'],
  ['membrane'],
  ['calls', 'pressure'],
  ['restore'],
  ['api'],
];

/** The code of a Rust file without comments and string/char literals. */
function stripRust(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < text.length && depth > 0) {
        if (text[i] === '/' && text[i + 1] === '*') { depth++; i += 2; }
        else if (text[i] === '*' && text[i + 1] === '/') { depth--; i += 2; }
        else i++;
      }
    } else if (c === 'r' && /^r#*"/.test(text.slice(i, i + 10)) && !/[A-Za-z0-9_]/.test(text[i - 1] || '')) {
      const hashes = /^r(#*)"/.exec(text.slice(i))[1];
      const end = text.indexOf('"' + hashes, i + 2 + hashes.length);
      i = end < 0 ? text.length : end + 1 + hashes.length;
      out += '""';
    } else if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      out += '""';
    } else if (c === '\'' && /^'(\\.|[^\\'])'/.test(text.slice(i, i + 4)) ) {
      // A char literal ('x', '\n'); lifetimes ('a) are left alone.
      i += text[i + 1] === '\\' ? 4 : 3;
      out += "' '";
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Module names referred to by `crate::NAME` in the code, including
 *  grouped imports (`use crate::{a, b::c}`). */
function references(code) {
  const found = new Set();
  for (const m of code.matchAll(/\bcrate\s*::\s*([A-Za-z_][A-Za-z0-9_]*)/g)) found.add(m[1]);
  for (const m of code.matchAll(/\bcrate\s*::\s*\{([^;]*?)\}\s*;/gs)) {
    // Top-level items of the group only: `a`, `b::{c, d}` -> a, b.
    let depth = 0;
    let item = '';
    for (const ch of m[1] + ',') {
      if (ch === '{') depth++;
      if (ch === '}') depth--;
      if (ch === ',' && depth === 0) {
        const name = /^\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(item);
        if (name) found.add(name[1]);
        item = '';
      } else item += ch;
    }
  }
  return found;
}

function graph(dir = srcDir) {
  const modules = fs.readdirSync(dir).filter((f) => f.endsWith('.rs')).map((f) => f.slice(0, -3)).sort();
  const edges = new Map();
  for (const m of modules) {
    const code = stripRust(fs.readFileSync(path.join(dir, m + '.rs'), 'utf8'));
    const to = [...references(code)].filter((t) => t !== m && modules.includes(t)).sort();
    edges.set(m, to);
  }
  return { modules, edges };
}

/** One cycle of the graph (a list of modules, the first repeated at the
 *  end), or null. */
function findCycle({ modules, edges }) {
  const state = new Map(); // undefined: new, 1: on the path, 2: done
  const stack = [];
  function visit(m) {
    state.set(m, 1);
    stack.push(m);
    for (const t of edges.get(m)) {
      if (state.get(t) === 1) return [...stack.slice(stack.indexOf(t)), t];
      if (!state.get(t)) {
        const c = visit(t);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(m, 2);
    return null;
  }
  for (const m of modules) {
    if (!state.get(m)) {
      const c = visit(m);
      if (c) return c;
    }
  }
  return null;
}

/** Modules on some cycle (strongly connected components of more than one). */
function cyclicModules({ modules, edges }) {
  const reach = (from) => {
    const seen = new Set();
    const todo = [...edges.get(from)];
    while (todo.length) {
      const m = todo.pop();
      if (!seen.has(m)) { seen.add(m); todo.push(...edges.get(m)); }
    }
    return seen;
  };
  return modules.filter((m) => reach(m).has(m));
}

function layerOf(m) {
  const i = LAYERS.findIndex((l) => l.includes(m));
  return i < 0 ? null : i;
}

/** Imports from a lower layer to a higher one, as "from -> to". */
function layerViolations({ modules, edges }) {
  const out = [];
  for (const m of modules) {
    const from = layerOf(m);
    if (from === null) continue;
    for (const t of edges.get(m)) {
      const to = layerOf(t);
      if (to !== null && to > from) out.push(`${m} -> ${t}`);
    }
  }
  return out;
}

/** Modules of src/ that no layer lists (the crate root aside). */
function unlayered({ modules }) {
  return modules.filter((m) => m !== 'lib' && layerOf(m) === null);
}

module.exports = { graph, findCycle, cyclicModules, layerViolations, unlayered, stripRust, references, LAYERS };

if (require.main === module) {
  const g = graph();
  if (!process.argv.includes('--check')) {
    for (const m of g.modules) console.log(`${m} -> ${g.edges.get(m).join(', ') || '(nothing)'}`);
  }
  let wrong = false;
  const cycle = findCycle(g);
  if (cycle) {
    console.log(`cycle: ${cycle.join(' -> ')}`);
    console.log(`modules on a cycle: ${cyclicModules(g).join(', ')}`);
    wrong = true;
  } else {
    console.log('no cycle');
  }
  const violations = layerViolations(g);
  if (violations.length) {
    console.log(`imports of a higher layer: ${violations.join('; ')}`);
    wrong = true;
  }
  const loose = unlayered(g);
  if (loose.length) console.log(`in no layer (cycle check only): ${loose.join(', ')}`);
  process.exit(wrong ? 1 : 0);
}
