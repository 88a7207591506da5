'use strict';
// Issue 6, point 5: isolation. A guest reaches only the imports it was given;
// two VMs share nothing (a value from one passed to another is rejected);
// a VM's failure (fatal error, out of memory, gas, stack overflow, dispose)
// leaves every other VM working. The failure cases run in a child process
// (helpers.runIsolated), so a crash fails the test instead of the runner.
//
// Run: node --expose-gc --test __test__/isolation.test.js

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, runIsolated } = require('./helpers.js');

const { MicroviumError } = Microvium;

function isolated(code) {
  const r = runIsolated(code + '\nconsole.log("child ok");', { timeout: 60000, args: ['--expose-gc'] });
  const out = `\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.signal, null, `child process died with ${r.signal}${out}`);
  assert.equal(r.status, 0, `child process exited with ${r.status}${out}`);
  assert.match(r.stdout, /child ok/, out);
  return r;
}

const SRC = `
  const h = vmImport(1);
  let n = 0;
  const shared = { v: 0, list: [1, 2] };
  class K { constructor(x) { this.x = x; } get2() { return this.x * 2; } }
  vmExport(1, (x) => { n = n + 1; return x; });
  vmExport(2, () => n);
  vmExport(3, () => ({ o: 1 }));
  vmExport(4, () => [1, 2, 3]);
  vmExport(5, () => { const u = Microvium.newUint8Array(3); u[0] = 9; return u; });
  vmExport(6, () => (a) => a + n);
  vmExport(7, K);
  vmExport(8, shared);
  vmExport(9, (a) => h(a));
  vmExport(10, () => h);
  vmExport(11, () => { try { h(); return 'no throw'; } catch (e) { return e; } });
  vmExport(12, (k) => { let i = 0; while (i < k) { i = i + 1; } return i; });
  vmExport(13, async () => n);
  vmExport(14, (o) => { o.mutated = true; o.list[0] = 'changed'; return o; });
`;
const snapshot = compile(SRC);

// ---------------------------------------------------------------------------

describe('a guest reaches only the imports it was given', () => {
  test('a snapshot that imports id 5 does not restore without it; the error names 5', () => {
    const s = compile('const f = vmImport(5); const g = vmImport(1); vmExport(1, () => f() + g());');
    const cases = [undefined, {}, { 1: () => 1 }, { 1: () => 1, 4: () => 1, 6: () => 1, 50: () => 1, 0xFFFF: () => 1 }];
    for (const imports of cases) {
      assert.throws(() => Microvium.restore(s, imports), (e) => e instanceof MicroviumError &&
        e.code === 'MVM_E_UNRESOLVED_IMPORT' && /\b5\b/.test(e.message), JSON.stringify(imports && Object.keys(imports)));
    }
    // An inherited property is not an import (so prototype pollution cannot inject one).
    assert.throws(() => Microvium.restore(s, Object.create({ 5: () => 1, 1: () => 1 })), (e) => e.code === 'MVM_E_UNRESOLVED_IMPORT' && /\b5\b/.test(e.message));
    Object.prototype[5] = () => 'polluted';
    try {
      assert.throws(() => Microvium.restore(s, { 1: () => 1 }), (e) => e.code === 'MVM_E_UNRESOLVED_IMPORT' && /\b5\b/.test(e.message));
    } finally {
      delete Object.prototype[5];
    }
    for (const bad of [undefined, null, 5, 'f', {}]) {
      assert.throws(() => Microvium.restore(s, { 1: () => 1, 5: bad }), (e) => e instanceof TypeError && /\b5\b/.test(e.message), String(bad));
    }
    assert.equal(Microvium.restore(s, { 1: () => 1, 5: () => 2 }).exports[1](), 3);
  });

  test('imports given but not imported by the snapshot are never reachable, not even through vmImport at run time', () => {
    const spies = { 2: 0, 3: 0, 5: 0 };
    const imports = { 1: (x) => x };
    for (const id of Object.keys(spies)) imports[id] = () => { spies[id]++; return 'leaked ' + id; };
    const vm = Microvium.restore(compile(`
      const h = vmImport(1);
      vmExport(2, () => { try { return vmImport(2)(); } catch (e) { return 'threw'; } });
      vmExport(3, () => { try { return vmImport(3)(); } catch (e) { return 'threw'; } });
      vmExport(5, () => { try { return vmImport(5)(); } catch (e) { return 'threw'; } });
      vmExport(1, (x) => h(x));
    `), imports);
    for (const id of [2, 3, 5]) {
      // vmImport exists only at compile time: at run time it throws (past the guest's catch).
      let r;
      try { r = vm.exports[id](); } catch (e) { r = String(e); }
      assert.ok(r === 'threw' || /not available/i.test(r), `vmImport(${id}) at run time gave ${r}`);
    }
    assert.equal(vm.exports[1](7), 7);
    assert.deepEqual(spies, { 2: 0, 3: 0, 5: 0 }, 'no other import was called');
  });

  test('the guest gets copies of host objects and errors, never references to them', () => {
    const hostError = new TypeError('host detail');
    hostError.extra = 'x';
    const vm = Microvium.restore(snapshot, { 1: () => { throw hostError; } });
    const original = { a: 1, list: [1, 2] };
    const out = vm.exports[14](original);
    assert.deepEqual(original, { a: 1, list: [1, 2] }, 'the host object is unchanged');
    assert.equal(out.mutated, true);
    assert.equal(out.list[0], 'changed');
    // A caught host error is a guest copy: message, name, own properties; not the host object.
    const caught = vm.exports[11]();
    assert.notEqual(caught, hostError);
    assert.equal(caught.message, 'host detail');
    assert.equal(caught.name, 'TypeError');
    assert.equal(caught.extra, 'x');
    assert.equal(caught.stack, undefined, 'the host stack trace is not handed to the guest');
  });

  test('host functions cannot be smuggled in: only this VM\'s own imports cross as functions', () => {
    const imp = (x) => x;
    const vm = Microvium.restore(snapshot, { 1: imp });
    const other = Microvium.restore(snapshot, { 1: (x) => x });
    assert.equal(vm.exports[10](), imp, 'its own import comes back as the same host function');
    assert.equal(vm.exports[1](imp), imp);
    for (const fn of [() => 1, function named() {}, class C {}, Math.max, require, other.exports[10]()]) {
      assert.throws(() => vm.exports[1](fn), TypeError, String(fn).slice(0, 30));
      assert.throws(() => vm.exports[1]({ nested: { fn } }), TypeError);
      assert.throws(() => vm.exports[1]([fn]), TypeError);
      assert.throws(() => { vm.exports[8].fn = fn; }, TypeError);
    }
    assert.equal(vm.exports[2](), 1, 'only the valid call ran');
    assert.deepEqual(Object.keys(vm.exports[8]), ['v', 'list']);
  });
});

// ---------------------------------------------------------------------------

describe('two VMs share nothing', () => {
  test('two VMs of one snapshot have separate state, exports and values', () => {
    const bytes = snapshot.slice();
    const a = Microvium.restore(bytes, { 1: (x) => x });
    const b = Microvium.restore(bytes, { 1: (x) => x });
    bytes.fill(0); // the bytes were copied
    a.exports[1](1); a.exports[1](2);
    assert.equal(a.exports[2](), 2);
    assert.equal(b.exports[2](), 0);
    a.exports[8].v = 'a only';
    a.exports[8].list[0] = 'a';
    assert.equal(b.exports[8].v, 0);
    assert.equal(b.exports[8].list[0], 1);
    assert.notEqual(a.exports[1], b.exports[1]);
    assert.notEqual(a.exports[7], b.exports[7]);
    assert.notEqual(a.exports[8], b.exports[8]);
    const ka = new a.exports[7](2);
    assert.ok(ka instanceof a.exports[7]);
    assert.ok(!(ka instanceof b.exports[7]));
    // A snapshot of A restores to a third VM that shares nothing with A.
    const c = Microvium.restore(a.createSnapshot(), { 1: (x) => x });
    assert.equal(c.exports[2](), 2);
    c.exports[1](0);
    assert.equal(c.exports[2](), 3);
    assert.equal(a.exports[2](), 2);
    assert.equal(c.exports[8].v, 'a only');
    c.exports[8].v = 'c';
    assert.equal(a.exports[8].v, 'a only');
  });

  test('every kind of value from VM A passed to VM B is a TypeError, and B is unchanged', async () => {
    let ret;
    const a = Microvium.restore(snapshot, { 1: (x) => x });
    const b = Microvium.restore(snapshot, { 1: () => ret });
    const fromA = {
      object: a.exports[3](), array: a.exports[4](), uint8array: a.exports[5](), closure: a.exports[6](),
      class: a.exports[7], instance: new a.exports[7](1), exportedObject: a.exports[8], exportedFunction: a.exports[1],
      promise: a.exports[13](),
    };
    for (const [kind, value] of Object.entries(fromA)) {
      const uses = {
        argument: () => b.exports[1](value),
        'nested argument': () => b.exports[1]({ deep: [1, { value }] }),
        'property write': () => { b.exports[8].v = value; },
        'array element write': () => { b.exports[8].list[1] = value; },
        'import result': () => { ret = value; return b.exports[9](); },
        'this of a call': () => b.exports[1].call(value, 1),
      };
      for (const [how, use] of Object.entries(uses)) {
        if (how === 'this of a call') {
          // Calling B's function with A's value as `this` must not hand it to B either.
          let r;
          try { r = use(); } catch (e) { assert.ok(e instanceof TypeError, `${kind} as ${how}: ${e}`); continue; }
          assert.equal(r, 1, `${kind} as ${how}`);
          continue;
        }
        assert.throws(use, (e) => e instanceof TypeError && /another|other|different/i.test(e.message), `${kind} as ${how}`);
      }
    }
    await fromA.promise;
    const callsBefore = b.exports[2]();
    assert.equal(b.exports[8].v, 0);
    assert.equal(b.exports[8].list[1], 2);
    assert.equal(b.exports[1](5), 5);
    assert.equal(b.exports[2](), callsBefore + 1);
    // A is not affected either.
    assert.equal(fromA.object.o, 1);
    assert.equal(fromA.uint8array.slice()[0], 9);
  });

  test("gas is per VM: a nested call into another VM neither spends nor is stopped by the caller's gas", () => {
    let b;
    const a = Microvium.restore(snapshot, { 1: (k) => b.exports[12](k) });
    b = Microvium.restore(snapshot, { 1: (x) => x });
    a.stopAfterNInstructions(1000);
    assert.equal(a.exports[9](100000), 100000, 'B ran 100,000 iterations inside A\'s call');
    const left = a.getInstructionCountRemaining();
    assert.ok(left > 900 && left < 1000, `A spent ${1000 - left} instructions`);
    assert.equal(b.getInstructionCountRemaining(), -1);
    b.stopAfterNInstructions(50);
    assert.throws(() => a.exports[9](1000), (e) => e instanceof MicroviumError && e.code === 'MVM_E_INSTRUCTION_COUNT_REACHED');
    assert.equal(a.getInstructionCountRemaining() > 0, true, 'A still has gas');
    a.stopAfterNInstructions(-1);
    assert.equal(a.exports[1](3), 3);
  });

  test('a disposed VM\'s values are still rejected by other VMs, and the others keep working', () => {
    const a = Microvium.restore(snapshot, { 1: (x) => x });
    const b = Microvium.restore(snapshot, { 1: (x) => x });
    const obj = a.exports[3]();
    const fn = a.exports[6]();
    a.dispose();
    for (const v of [obj, fn]) assert.throws(() => b.exports[1](v), (e) => e instanceof Error && /another|other|dispos/i.test(e.message));
    assert.equal(b.exports[1](1), 1);
    assert.equal(b.exports[3]().o, 1);
  });

  test('200 VMs of one snapshot, called interleaved, each keep their own state', () => {
    const vms = Array.from({ length: 200 }, () => Microvium.restore(snapshot, { 1: (x) => x }));
    for (let round = 0; round < 5; round++) {
      vms.forEach((vm, i) => { for (let k = 0; k <= i % 7; k++) vm.exports[1](k); });
    }
    vms.forEach((vm, i) => assert.equal(vm.exports[2](), 5 * ((i % 7) + 1), `VM ${i}`));
    for (const vm of vms) vm.dispose();
  });
});

// ---------------------------------------------------------------------------

describe("one VM's failure leaves every other VM working", () => {
  test('fatal errors, out of memory, gas, stack overflow, nesting overflow, guest throws, dispose: the others go on', () => {
    isolated(`
      const SRC = ${JSON.stringify(SRC)};
      const FAIL = ${JSON.stringify(`
        const h = vmImport(1);
        vmExport(1, () => { let head; while (true) head = { next: head, s: 'x' }; });
        vmExport(2, (n) => { let s = 'a'; let i = 0; while (i < n) { s = s + s; i++; } return s; });
        vmExport(3, () => { const o = {}; o.__proto__ = null; });
        vmExport(4, () => { while (true) {} });
        vmExport(5, () => { const r = (n) => r(n + 1) + 1; return r(0); });
        vmExport(6, (n) => h(n));
        vmExport(7, () => { throw { reason: 'guest threw' }; });
        vmExport(8, (x) => x + 1);
        vmExport(9, () => { const a = []; let i = 0; while (true) { a[i] = i; i++; } });
      `)};
      const snap = compile(SRC);
      const failSnap = compile(FAIL);
      // Bystanders: VMs of the same and of another snapshot, with live values.
      const bystanders = [];
      for (let i = 0; i < 6; i++) {
        const vm = Microvium.restore(i % 2 ? snap : failSnap, { 1: (x) => x });
        const entry = { vm, kind: i % 2 ? 'other snapshot' : 'same snapshot' };
        if (i % 2) {
          vm.exports[1](i);
          entry.obj = vm.exports[3]();
          entry.u8 = vm.exports[5]();
          entry.fn = vm.exports[6]();
          entry.calls = vm.exports[2]();
        }
        if (i === 1) vm.stopAfterNInstructions(1e9);
        bystanders.push(entry);
      }
      function checkBystanders(label) {
        for (const [i, b] of bystanders.entries()) {
          const where = label + ', bystander ' + i + ' (' + b.kind + ')';
          if (b.obj) {
            assert.equal(b.vm.exports[2](), b.calls, where);
            assert.equal(b.obj.o, 1, where);
            assert.equal(b.u8.slice()[0], 9, where);
            assert.equal(b.fn(1), 1 + b.calls, where);
            assert.equal(b.vm.exports[12](5000), 5000, where);
            b.vm.runGC(true);
            assert.ok(b.vm.getMemoryStats().totalSize > 0, where);
          } else {
            assert.equal(b.vm.exports[8](1), 2, where);
          }
        }
        assert.ok(bystanders[1].vm.getInstructionCountRemaining() > 1e9 - 1e7, label + ': gas of a bystander unaffected');
        assert.equal(bystanders[3].vm.getInstructionCountRemaining(), -1, label);
      }
      const failures = [
        ['out of memory', (vm) => vm.exports[1](), 'MVM_E_OUT_OF_MEMORY', true],
        ['allocation too large', (vm) => vm.exports[2](16), 'MVM_E_ALLOCATION_TOO_LARGE', true],
        ['read-only __proto__', (vm) => vm.exports[3](), 'MVM_E_PROTO_IS_READONLY', false],
        ['array too long', (vm) => vm.exports[9](), 'MVM_E_ARRAY_TOO_LONG', false],
        ['gas', (vm) => { vm.stopAfterNInstructions(10000); return vm.exports[4](); }, 'MVM_E_INSTRUCTION_COUNT_REACHED', false],
        ['guest stack overflow', (vm) => vm.exports[5](), 'MVM_E_STACK_OVERFLOW', false],
        ['host nesting overflow', (vm) => vm.exports[6](1), 'MVM_E_STACK_OVERFLOW', false],
        ['guest throws', (vm) => vm.exports[7](), null, false],
        ['dispose', (vm) => { vm.dispose(); return vm.exports[8](1); }, null, true],
      ];
      checkBystanders('before');
      for (const [label, fail, code, fatal] of failures) {
        let vm;
        vm = Microvium.restore(failSnap, { 1: (n) => vm.exports[6](n) });
        let e;
        assert.throws(() => fail(vm), (x) => { e = x; return true; }, label);
        if (code) assert.equal(e.code, code, label + ': ' + e.message);
        if (label === 'guest throws') assert.equal(e.reason, 'guest threw');
        try { vm.stopAfterNInstructions(-1); } catch (x) { assert.ok(fatal, label + ': ' + x.message); }
        let usable = true;
        try { vm.exports[8](1); } catch (x) { usable = false; }
        assert.equal(usable, !fatal, label + (fatal ? ': the failed VM is unusable' : ': the failed VM goes on'));
        checkBystanders('after ' + label);
        // The same failure inside a nested call made from a bystander's import.
        let inner;
        const outer = Microvium.restore(snap, { 1: () => { try { fail(vm = Microvium.restore(failSnap, { 1: (n) => vm.exports[6](n) })); } catch (x) { inner = x; } return 'outer goes on'; } });
        assert.equal(outer.exports[9](), 'outer goes on', label);
        assert.ok(inner !== undefined, label);
        assert.equal(outer.exports[1](2), 2);
        checkBystanders('after nested ' + label);
      }
    `);
  });

  test('a VM poisoned inside a worker does not affect VMs of the main thread or of other workers', () => {
    isolated(`
      const { Worker } = require('node:worker_threads');
      const main = Microvium.restore(compile('vmExport(1, (x) => x + 1);'), {});
      const body = ${JSON.stringify(`
        const Microvium = require(${JSON.stringify(require.resolve('..'))});
        const { compile } = require(${JSON.stringify(require.resolve('./helpers.js'))});
        const { parentPort, workerData } = require('node:worker_threads');
        const vm = Microvium.restore(compile('vmExport(1, () => { let h; while (true) h = { n: h }; }); vmExport(2, (x) => x * 2);'), {});
        let code = 'none';
        if (workerData.fail) { try { vm.exports[1](); } catch (e) { code = e.code; } }
        let ok; try { ok = vm.exports[2](21); } catch (e) { ok = 'poisoned'; }
        parentPort.postMessage({ code, ok });
      `)};
      const run = (fail) => new Promise((resolve, reject) => {
        const w = new Worker(body, { eval: true, workerData: { fail } });
        w.on('message', resolve);
        w.on('error', reject);
      });
      Promise.all([run(true), run(false), run(true)]).then((results) => {
        assert.deepEqual(results, [{ code: 'MVM_E_OUT_OF_MEMORY', ok: 'poisoned' }, { code: 'none', ok: 42 }, { code: 'MVM_E_OUT_OF_MEMORY', ok: 'poisoned' }]);
        assert.equal(main.exports[1](1), 2);
        console.log('workers done');
      }).catch((e) => { console.error(e); process.exitCode = 1; });
    `);
  });
});
