'use strict';
// The structure src/lib.rs describes, kept true: src/'s modules import each
// other in layers (scripts/module-graph.js), raw Node-API calls are only in
// src/js.rs, and raw glue calls only in src/engine.rs's wrapper.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { root } = require('./helpers.js');
const { graph, findCycle, layerViolations, stripRust } = require('../scripts/module-graph.js');

const src = path.join(root, 'src');
const code = (file) => stripRust(fs.readFileSync(path.join(src, file), 'utf8'));
const rustFiles = fs.readdirSync(src).filter((f) => f.endsWith('.rs'));

test('src/ modules import without a cycle', () => {
  const cycle = findCycle(graph());
  assert.equal(cycle, null, `import cycle: ${cycle && cycle.join(' -> ')}`);
});

test('src/ modules import only their own layer and lower ones', () => {
  assert.deepEqual(layerViolations(graph()), []);
});

test('the cycle check finds a cycle and a layer violation', () => {
  // The check itself, on a made-up crate: a -> b -> a.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'module-graph-'));
  try {
    fs.writeFileSync(path.join(dir, 'vm.rs'), 'use crate::api::thing; // crate::js in a comment\n');
    fs.writeFileSync(path.join(dir, 'api.rs'), 'use crate::{vm::State, js};\nfn f() { crate::vm::g(); }\n');
    fs.writeFileSync(path.join(dir, 'js.rs'), 'const S: &str = "crate::vm::x";\n');
    const g = graph(dir);
    assert.deepEqual(g.edges.get('api'), ['js', 'vm']);
    assert.deepEqual(g.edges.get('js'), []);
    assert.deepEqual(findCycle(g), ['api', 'vm', 'api']);
    assert.deepEqual(layerViolations(g), ['vm -> api']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('raw Node-API calls are only in src/js.rs', () => {
  const outside = rustFiles.filter((f) => f !== 'js.rs' && /\bsys\s*::|napi::sys/.test(code(f)));
  assert.deepEqual(outside, []);
});

test('raw glue calls are only in src/engine.rs', () => {
  const outside = rustFiles.filter((f) => f !== 'engine.rs' && /\bglue_[a-z_0-9]+\s*\(/.test(code(f)));
  assert.deepEqual(outside, []);
});
