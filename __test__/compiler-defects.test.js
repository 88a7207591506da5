'use strict';
// What the `microvium` 8.0.0 compiler gets wrong cannot be fixed in this
// package: the bytecode it emits is wrong. The runtime refuses such
// bytecode safely (only the VM concerned fails) and says what happened in a
// user's terms, and the documented workaround computes what Node computes.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { compile, runBoth, engineMessage } = require('./helpers.js');
const Microvium = require('..');

// A function that makes closures in a `for (let ...)` loop and, after the
// loop, a closure over its own variables: the compiler's loop scope
// replaces the function's scope, which is then discarded.
const DEFECTIVE = `
  const report = vmImport(1);
  vmExport(1, () => {
    const fs = [];
    for (let i = 0; i < 3; i++) { fs.push(() => i); }
    report(fs[0]() + fs[1]() + fs[2]());
    {
      const fact = (n) => n <= 1 ? 1 : n * fact(n - 1);
      report(fact(5));
    }
  });
  vmExport(2, () => 42);
`;

test('closures from a for-let loop, then a closure over the function\'s variables: a fatal error that names the compiler defect', () => {
  const reported = [];
  const vm = Microvium.restore(compile(DEFECTIVE), { 1: (x) => reported.push(x) });
  let error;
  assert.throws(() => vm.exports[1](), (e) => { error = e; return true; });
  assert.ok(error instanceof Microvium.MicroviumError, String(error));
  assert.equal(error.code, 'MVM_E_INVALID_BYTECODE');
  assert.ok(error.message.startsWith(engineMessage('MVM_E_INVALID_BYTECODE') + '. '), error.message);
  assert.match(error.message, /compiler/);
  assert.match(error.message, /for \(let/);
  assert.equal(reported.length, 1, 'the loop ran before the failure');
  assert.throws(() => vm.exports[2](), (e) => e.code === 'MVM_E_FATAL_ERROR_MUST_KILL_VM', 'that VM is unusable');
  const other = Microvium.restore(compile('vmExport(1, () => 7);'), {});
  assert.equal(other.exports[1](), 7, 'other VMs go on');
});

test('the same defect with a class after the loop', () => {
  const vm = Microvium.restore(compile(`
    vmExport(1, () => {
      const fs = [];
      let k = 5;
      for (let i = 0; i < 3; i++) { fs.push(() => i); }
      class A { m() { return k; } }
      return new A().m() + fs[2]();
    });
  `), {});
  assert.throws(() => vm.exports[1](), (e) => e.code === 'MVM_E_INVALID_BYTECODE' && /compiler/.test(e.message));
});

test('the workaround (the loop in a function of its own) computes what Node computes', () => {
  const { node, guest } = runBoth(`
    const report = vmImport(1);
    const loop = () => { const fs = []; for (let i = 0; i < 3; i++) { fs.push(() => i); } return fs; };
    vmExport(1, () => {
      const fs = loop();
      report(fs[0]() + fs[1]() + fs[2]());
      const fact = (n) => n <= 1 ? 1 : n * fact(n - 1);
      report(fact(5));
    });
  `);
  assert.deepEqual(guest, node);
});
