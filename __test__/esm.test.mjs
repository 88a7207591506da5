// ESM entry of @microvium/runtime (issue 2, point 3): default and named
// imports, through the package's "exports" map, and the same objects as the
// CommonJS entry. Run by foundation.test.js and directly by `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import Microvium, { VM, restore, MicroviumError, engineVersion } from '@microvium/runtime';
import * as ns from '@microvium/runtime';

const require = createRequire(import.meta.url);
const { compile } = require('./helpers.js');

test('default import is the CommonJS module object, and Microvium.default === Microvium', () => {
  assert.equal(Microvium, require('@microvium/runtime'));
  assert.equal(Microvium.default, Microvium);
  assert.equal(ns.default, Microvium);
});

test('named imports are the members of the default export', () => {
  assert.equal(VM, Microvium.VM);
  assert.equal(restore, Microvium.restore);
  assert.equal(MicroviumError, Microvium.MicroviumError);
  assert.equal(engineVersion, Microvium.engineVersion);
  assert.equal(engineVersion, '8.0.0');
  for (const name of ['restore', 'VM', 'MicroviumError', 'engineVersion', 'default']) {
    assert.ok(name in ns, `namespace has ${name}`);
  }
});

test('restore and new VM work through the ESM entry', () => {
  const snapshot = compile('const h = vmImport(2); vmExport(1, (a, b) => h(a) + b);');
  const imports = { 2: (x) => x * 10 };
  const vm = restore(snapshot, imports);
  assert.ok(vm instanceof VM);
  assert.equal(vm.exports[1](4, 2), 42);
  const vm2 = new VM(Array.from(snapshot), imports);
  assert.equal(vm2.exports[1](1, 1), 11);
  const vm3 = Microvium.default.restore(snapshot.buffer, imports);
  assert.equal(vm3.exports[1](0, 7), 7);
});

test('MicroviumError from the ESM entry is what engine failures throw', () => {
  assert.throws(() => restore(new Uint8Array(0)), (e) => e instanceof MicroviumError && e instanceof Error
    && e.code === 'MVM_E_INVALID_BYTECODE' && e.errno === 18
    && e.message === 'Microvium Error: MVM_E_INVALID_BYTECODE (18)' && /empty/.test(e.detail));
});
