'use strict';
// Issue 6, point 3: hostile guests (and hostile values handed to a guest).
// Every case runs in a child process (helpers.runIsolated): the child must
// exit with status 0 and no signal, so a crash, an abort or a native stack
// overflow fails the test instead of killing the runner. Inside the child,
// each case checks the specific, clear error the runtime gives and that the
// process, the VM (or, after a fatal error, every other VM) keeps working.
//
// Run: node --expose-gc --test __test__/hostile.test.js

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { runIsolated, root, ERRNO, ENGINE_ERRORS } = require('./helpers.js');


// Helpers defined in every child.
const PRELUDE = `
const ERRNO = ${JSON.stringify(ERRNO)};
const ENGINE_ERRORS = ${JSON.stringify(ENGINE_ERRORS)};
const engineMessage = (code) => 'Microvium Error: ' + code + ' (' + ERRNO[code] + ')' + (ENGINE_ERRORS[code].description ? ': ' + ENGINE_ERRORS[code].description : '');
const { MicroviumError } = Microvium;
// fn() must throw a MicroviumError with this code, errno and message format.
function throwsMvm(fn, code, label) {
  let err;
  assert.throws(fn, (e) => { err = e; return true; }, label);
  assert.ok(err instanceof MicroviumError, (label || '') + ': expected a MicroviumError, got ' + (err && err.stack || err));
  assert.equal(err.code, code, label);
  assert.equal(err.errno, ERRNO[code], label);
  assert.ok(err.message.startsWith(engineMessage(code)), label + ': ' + err.message);
  return err;
}
// After a fatal error: every use of the VM, its exports and values it gave
// out throws a MicroviumError whose message names the cause.
function assertPoisoned(vm, cause, values = []) {
  const uses = [
    ['call an export', () => vm.exports[1]()],
    ['call another export', () => vm.exports[2](1)],
    ['createSnapshot', () => vm.createSnapshot()],
    ['getMemoryStats', () => vm.getMemoryStats()],
    ['runGC', () => vm.runGC()],
    ...values.map((v, i) => ['use value ' + i, () => typeof v === 'function' ? v() : v.someProperty]),
  ];
  for (const [label, use] of uses) {
    let err;
    assert.throws(use, (e) => { err = e; return true; }, label);
    assert.ok(err instanceof MicroviumError, label + ': ' + (err && err.stack || err));
    assert.ok(cause instanceof RegExp ? cause.test(err.message) : err.message.includes(cause), label + ': the message must name ' + cause + ': ' + err.message);
  }
}
`;

function isolated(code, opts = {}) {
  const r = runIsolated(PRELUDE + code + '\nconsole.log("child ok");', { timeout: 60000, args: ['--expose-gc'], ...opts });
  const out = `\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.signal, null, `child process died with ${r.signal}${out}`);
  assert.equal(r.status, 0, `child process exited with ${r.status}${out}`);
  assert.match(r.stdout, /child ok/, out);
  return r;
}

const GUEST = JSON.stringify(`
  const h = vmImport(1);
  let count = 0;
  vmExport(1, (x) => { count = count + 1; return x; });
  vmExport(2, () => count);
  vmExport(3, (x) => x + 1);
  const target = { keep: 1 };
  vmExport(4, target);
  vmExport(5, () => h());
`);

// ---------------------------------------------------------------------------

describe('infinite loops end by the gas counter', () => {
  test('while (true) {} : MVM_E_INSTRUCTION_COUNT_REACHED, the guest cannot catch it, the VM goes on', () => {
    isolated(`
      const vm = Microvium.restore(compile(\`
        let n = 0;
        vmExport(1, () => { while (true) { n = n + 1; } });
        vmExport(2, () => { try { while (true) {} } catch (e) { return 'caught'; } });
        vmExport(3, (x) => x + 1);
        vmExport(4, () => n > 0);
      \`), {});
      for (const id of [1, 2]) {
        vm.stopAfterNInstructions(100000);
        throwsMvm(() => vm.exports[id](), 'MVM_E_INSTRUCTION_COUNT_REACHED', 'export ' + id);
        assert.equal(vm.getInstructionCountRemaining(), 0);
        // Still out of gas until the host gives more.
        throwsMvm(() => vm.exports[3](1), 'MVM_E_INSTRUCTION_COUNT_REACHED', 'no gas left');
        vm.stopAfterNInstructions(-1);
        assert.equal(vm.exports[3](1), 2);
      }
      assert.equal(vm.exports[4](), true, 'guest state written before the stop is kept');
    `);
  });

  test('a loop that allocates garbage or calls the host forever ends by gas too', () => {
    isolated(`
      let calls = 0;
      const vm = Microvium.restore(compile(\`
        const h = vmImport(1);
        vmExport(1, () => { let x; while (true) { x = { a: [1, 2], s: 'abc' }; } });
        vmExport(2, () => { while (true) { h(); } });
        vmExport(3, (x) => x + 1);
      \`), { 1: () => { calls++; } });
      vm.stopAfterNInstructions(2000000);
      throwsMvm(() => vm.exports[1](), 'MVM_E_INSTRUCTION_COUNT_REACHED', 'allocating loop');
      vm.stopAfterNInstructions(100000);
      throwsMvm(() => vm.exports[2](), 'MVM_E_INSTRUCTION_COUNT_REACHED', 'host-calling loop');
      assert.ok(calls > 1000, 'the host was called ' + calls + ' times');
      vm.stopAfterNInstructions(-1);
      assert.equal(vm.exports[3](1), 2);
      vm.runGC(true);
    `);
  });

  test('a worker stuck in a loop without gas can still be terminated', () => {
    const workerBody = `
      const Microvium = require(${JSON.stringify(root)});
      const { compile } = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});
      const vm = Microvium.restore(compile('vmExport(1, () => { let i = 0; while (true) { i++; } });'), {});
      require('node:worker_threads').parentPort.postMessage('looping');
      vm.exports[1]();
    `;
    const r = isolated(`
      const { Worker } = require('node:worker_threads');
      const w = new Worker(${JSON.stringify(workerBody)}, { eval: true });
      const t0 = Date.now();
      let looping = false;
      w.on('message', () => { looping = true; setTimeout(() => w.terminate(), 200); });
      w.on('error', (e) => { console.error(e); process.exitCode = 1; });
      w.on('exit', () => {
        assert.ok(looping, 'the worker was running the loop');
        assert.ok(Date.now() - t0 < 20000);
        console.log('worker ended after ' + (Date.now() - t0) + ' ms');
      });
    `);
    assert.match(r.stdout, /worker ended after/);
  });
});

// ---------------------------------------------------------------------------

describe('unbounded recursion in the guest', () => {
  test('self, mutual and allocating recursion: MVM_E_STACK_OVERFLOW, uncatchable, the VM goes on', () => {
    isolated(`
      const vm = Microvium.restore(compile(\`
        vmExport(1, () => { const r = (n) => r(n + 1) + 1; return r(0); });
        vmExport(2, () => { const r = (n) => r(n + 1) + 1; try { return r(0); } catch (e) { return 'caught'; } });
        vmExport(3, () => {
          const a = (n) => b(n + 1) + 1;
          const b = (n) => { let x1 = n, x2 = n, x3 = n, x4 = n, x5 = n, x6 = n, x7 = n, x8 = n; return a(x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8) + 1; };
          return a(0);
        });
        vmExport(4, () => { const r = (n) => { const o = { n: n, list: [n, 'level'] }; return r(n + 1) + o.n; }; return r(0); });
        vmExport(5, (d) => { const r = (n) => n <= 0 ? 0 : r(n - 1) + 1; return r(d); });
      \`), {});
      for (let round = 0; round < 50; round++) {
        for (const id of [1, 2, 3, 4]) {
          const e = throwsMvm(() => vm.exports[id](), 'MVM_E_STACK_OVERFLOW', 'export ' + id);
          assert.equal(e.message, 'Microvium Error: MVM_E_STACK_OVERFLOW (8)');
        }
        // The guest stack is unwound: a bounded recursion still works.
        assert.equal(vm.exports[5](100), 100);
      }
      assert.equal(vm.getMemoryStats().stackHeight, 0);
      vm.runGC(true);
    `);
  });

  test('deep JavaScript recursion that calls the VM (nested 64 levels) at every level: RangeError or stack overflow, no crash', () => {
    // The native frames of nested calls must fit in what V8 leaves of the
    // thread's stack, in the main thread and in a worker with a 1 MB stack.
    const body = `
      const s = compile('const h = vmImport(1); vmExport(1, (n) => n <= 0 ? 0 : h(n - 1) + 1); vmExport(2, (x) => x + 1);');
      const vm = Microvium.restore(s, { 1: (n) => vm.exports[1](n) });
      const seen = {};
      let depth = 0;
      function rec() {
        try { vm.exports[1](1000); } catch (e) { const k = e.code || e.constructor.name; seen[k] = (seen[k] || 0) + 1; }
        depth++;
        rec();
      }
      assert.throws(rec, RangeError);
      for (const k of Object.keys(seen)) assert.ok(['MVM_E_STACK_OVERFLOW', 'RangeError'].includes(k), k);
      assert.ok(seen.MVM_E_STACK_OVERFLOW > 0);
      assert.equal(vm.exports[2](1), 2);
      assert.equal(vm.exports[1](10), 10);
    `;
    isolated(body);
    isolated(`
      const { Worker } = require('node:worker_threads');
      const w = new Worker(${JSON.stringify(`
        const Microvium = require(${JSON.stringify(root)});
        const { compile } = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});
        const assert = require('node:assert/strict');
      ` + body)}, { eval: true, resourceLimits: { stackSizeMb: 1 } });
      w.on('error', (e) => { console.error(e); process.exitCode = 1; });
      w.on('exit', (code) => assert.equal(code, 0));
    `);
  });
});

// ---------------------------------------------------------------------------

describe('unbounded allocation', () => {
  test('a growing linked list: MVM_E_OUT_OF_MEMORY, then the VM is poisoned and other VMs keep working', () => {
    isolated(`
      const s = compile(\`
        vmExport(1, () => 1);
        vmExport(2, () => { let head = undefined; let n = 0; while (true) { head = { next: head, n: n, s: 'x' + n }; n++; } });
        vmExport(3, (x) => x + 1);
        vmExport(4, () => ({ a: 1 }));
        vmExport(5, () => { const u = Microvium.newUint8Array(8); return u; });
      \`);
      const before = Microvium.restore(s, {});
      const vm = Microvium.restore(s, {});
      const obj = vm.exports[4]();
      const u8 = vm.exports[5]();
      const f3 = vm.exports[3];
      vm.stopAfterNInstructions(100000000); // gas does not stop it first
      const e = throwsMvm(() => vm.exports[2](), 'MVM_E_OUT_OF_MEMORY');
      assert.match(e.message, /fatal|can no longer be used/i);
      assertPoisoned(vm, 'MVM_E_OUT_OF_MEMORY', [() => f3(1), obj, () => u8.slice(), () => { obj.a = 2; }, () => vm.stopAfterNInstructions(5)]);
      assert.equal(before.exports[3](41), 42);
      const after = Microvium.restore(s, {});
      assert.equal(after.exports[3](1), 2);
      assert.equal(after.exports[4]().a, 1);
      vm.dispose();
      assert.equal(before.exports[3](1), 2);
    `);
  });

  test('Uint8Arrays and strings kept alive, and guest values the host keeps: MVM_E_OUT_OF_MEMORY, contained', () => {
    isolated(`
      const s = compile(\`
        vmExport(1, () => { let keep = undefined; while (true) { const u = Microvium.newUint8Array(1000); keep = { u: u, next: keep }; } });
        vmExport(2, () => { let keep = undefined; let s = 'abcdefghijklmnopqrstuvwxyz'; while (true) { keep = { s: s + keep, next: keep }; } });
        vmExport(3, (i) => ({ i: i, s: 'str', arr: [i, i] }));
        vmExport(4, (x) => x + 1);
      \`);
      const other = Microvium.restore(s, {});
      for (const id of [1, 2]) {
        const vm = Microvium.restore(s, {});
        let e;
        assert.throws(() => vm.exports[id](), (x) => { e = x; return true; });
        assert.ok(e instanceof MicroviumError, e && e.stack);
        assert.ok(['MVM_E_OUT_OF_MEMORY', 'MVM_E_ALLOCATION_TOO_LARGE'].includes(e.code), e.code);
        assertPoisoned(vm, e.code);
        assert.equal(other.exports[4](id), id + 1);
      }
      // The host holds every result: the guest heap fills up.
      const vm = Microvium.restore(s, {});
      const kept = [];
      const e = throwsMvm(() => { for (let i = 0; i < 1e6; i++) kept.push(vm.exports[3](i)); }, 'MVM_E_OUT_OF_MEMORY');
      assert.ok(kept.length > 100 && kept.length < 65536 / 4, 'kept ' + kept.length);
      assertPoisoned(vm, 'MVM_E_OUT_OF_MEMORY', [kept[0]]);
      assert.equal(other.exports[4](1), 2);
    `);
  });
});

// ---------------------------------------------------------------------------

describe('64 kB strings and other oversized values', () => {
  test('host -> guest: a 64 kB string is MVM_E_ALLOCATION_TOO_LARGE (argument, import result, property, nested); the VM goes on', () => {
    isolated(`
      let ret;
      const vm = Microvium.restore(compile(${GUEST}), { 1: () => ret });
      const big = 'x'.repeat(65536);
      const bigUtf8 = '\\u20ac'.repeat(22000); // 66 kB of UTF-8
      const cases = [
        ['argument', () => vm.exports[1](big)],
        ['second argument', () => vm.exports[1](1, big)],
        ['multi-byte argument', () => vm.exports[1](bigUtf8)],
        ['nested in an object', () => vm.exports[1]({ a: 1, s: big })],
        ['nested in an array', () => vm.exports[1]([1, [big]])],
        ['property write', () => { vm.exports[4].s = big; }],
        ['import result', () => { ret = big; return vm.exports[5](); }],
        ['a 64 kB Uint8Array', () => vm.exports[1](new Uint8Array(65536))],
        ['a 64 kB Buffer', () => vm.exports[1](Buffer.alloc(65536, 1))],
        ['a 4096-character string', () => vm.exports[1]('y'.repeat(4096))],
      ];
      for (const [label, fn] of cases) {
        const e = throwsMvm(fn, 'MVM_E_ALLOCATION_TOO_LARGE', label);
        assert.match(e.detail, /4095/, label);
        assert.doesNotMatch(e.message, /fatal/i, label + ': not fatal');
      }
      assert.equal(vm.exports[2](), 0, 'the guest was never called with the big values');
      assert.deepEqual(Object.keys(vm.exports[4]), ['keep']);
      // The largest string that fits crosses intact, both ways.
      const max = 'z'.repeat(4094);
      assert.equal(vm.exports[1](max), max);
      ret = max;
      assert.equal(vm.exports[5](), max);
      assert.equal(vm.exports[3](1), 2);
    `);
  });

  test('guest -> host: a guest that builds a long string by concatenation hits MVM_E_ALLOCATION_TOO_LARGE (fatal for that VM)', () => {
    isolated(`
      const s = compile(\`
        vmExport(1, (n) => { let s = 'a'; let i = 0; while (i < n) { s = s + s; i++; } return s; });
        vmExport(2, (n) => { let s = ''; let i = 0; while (i < n) { s = s + 'abcdefghijklmnop'; i++; } return s; });
        vmExport(3, (s) => s + '!');
        vmExport(4, (x) => x + 1);
        vmExport(5, (n) => Microvium.newUint8Array(n));
      \`);
      const other = Microvium.restore(s, {});
      // What fits comes out intact.
      assert.equal(other.exports[1](11), 'a'.repeat(2048));
      assert.equal(other.exports[2](255), 'abcdefghijklmnop'.repeat(255));
      // A guest Uint8Array larger than the engine allows: a clear, non-fatal error.
      for (const n of [4096, 65536]) throwsMvm(() => other.exports[5](n), 'MVM_E_INVALID_UINT8_ARRAY_LENGTH', 'newUint8Array(' + n + ')');
      for (const [label, fn] of [
        ['doubling to 64 kB', (vm) => vm.exports[1](16)],
        ['appending past 4 kB', (vm) => vm.exports[2](4096)],
        ['appending to the largest host string', (vm) => vm.exports[3]('q'.repeat(4094))],
      ]) {
        const vm = Microvium.restore(s, {});
        const e = throwsMvm(() => fn(vm), 'MVM_E_ALLOCATION_TOO_LARGE', label);
        assert.match(e.message, /can no longer be used|fatal/i, label);
        assertPoisoned(vm, /MVM_E_ALLOCATION_TOO_LARGE|MVM_E_MALLOC_FAIL/);
        assert.equal(other.exports[4](1), 2, label + ': other VMs keep working');
      }
    `);
  });

  test('host arrays and objects larger than one engine allocation: a clear error, no crash, contained', () => {
    // One guest allocation is at most 4095 bytes: an array of more than 2047
    // items cannot be built, and the guest collector compacts an object's
    // properties into one allocation, so an object of more than about 1000
    // properties fails (fatally) when built or at the next collection.
    isolated(`
      const s = compile(${GUEST});
      const other = Microvium.restore(s, { 1: () => 0 });
      const wide = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => ['k' + i, i]));
      assert.equal(other.exports[1](new Array(2047).fill(7)).length, 2047);
      assert.equal(Object.keys(other.exports[1](wide(1000))).length, 1000);
      other.runGC(true);
      for (const [label, value] of [['array of 2048', new Array(2048).fill(0)], ['array of 8191', new Array(8191).fill(0)],
        ['object of 2000 keys', wide(2000)], ['object of 100,000 keys', wide(100000)]]) {
        const vm = Microvium.restore(s, { 1: () => 0 });
        let e;
        try { vm.exports[1](value); vm.runGC(); vm.exports[3](1); } catch (x) { e = x; }
        assert.ok(e, label + ': an error');
        assert.ok(e instanceof MicroviumError || e instanceof RangeError || e instanceof TypeError, label + ': ' + (e && e.stack));
        if (e instanceof MicroviumError) assert.match(e.message, /MVM_E_ALLOCATION_TOO_LARGE|MVM_E_OUT_OF_MEMORY/, label);
        // Either the VM goes on, or it is cleanly poisoned naming the cause.
        let usable = true;
        try { vm.exports[3](1); } catch (x) { usable = false; assert.match(x.message, /MVM_E_ALLOCATION_TOO_LARGE|MVM_E_OUT_OF_MEMORY/, label); }
        console.log(label + ': ' + e.message + (usable ? ' (VM usable)' : ' (VM poisoned)'));
        assert.equal(other.exports[3](1), 2);
      }
      assert.throws(() => other.exports[1](new Array(8192).fill(0)), (e) => e instanceof MicroviumError && /MVM_E_ALLOCATION_TOO_LARGE/.test(e.message));
      assert.equal(other.exports[3](1), 2);
    `);
  });

  test('a host object too large for the engine, passed in again and again (fresh VM each time): no native memory leak', () => {
      isolated(`
        const s = compile('vmExport(1, (x) => x); vmExport(2, (x) => x + 1);');
        const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => ['k' + i, i]));
        const tick = () => new Promise((resolve) => setImmediate(resolve));
        (async () => {
          let early;
          for (let k = 1; k <= 30; k++) {
            const vm = Microvium.restore(s, {});
            assert.throws(() => vm.exports[1](wide), (e) => e instanceof Error);
            vm.dispose();
            global.gc();
            await tick();
            if (k === 5) early = process.memoryUsage().rss;
          }
          const grown = (process.memoryUsage().rss - early) / 1048576;
          console.log('RSS grew ' + grown.toFixed(1) + ' MB over 25 attempts');
          assert.ok(grown < 20, 'RSS grew ' + grown.toFixed(1) + ' MB over 25 attempts');
        })().catch((e) => { console.error(e); process.exitCode = 1; });
      `);
    });

  test('a guest object with 1,500 properties: the collection that compacts it fails (MVM_E_ALLOCATION_TOO_LARGE), contained', () => {
    isolated(`
      const s = compile(\`
        let keep;
        vmExport(1, (n) => { const o = {}; let i = 0; while (i < n) { o['k' + i] = i; i++; } keep = o; return n; });
        vmExport(2, (x) => x + 1);
      \`);
      const other = Microvium.restore(s, {});
      assert.equal(other.exports[1](900), 900);
      other.runGC(true);
      const vm = Microvium.restore(s, {});
      let e;
      try { vm.exports[1](1500); vm.runGC(); } catch (x) { e = x; }
      assert.ok(e instanceof MicroviumError, e && e.stack);
      assert.match(e.message, /MVM_E_ALLOCATION_TOO_LARGE|MVM_E_MALLOC_FAIL/);
      assertPoisoned(vm, /MVM_E_ALLOCATION_TOO_LARGE|MVM_E_MALLOC_FAIL/);
      assert.equal(other.exports[2](1), 2);
    `);
  });

  test('a fatal error in the automatic guest collection after a call fails that call', () => {
      isolated(`
        const vm = Microvium.restore(compile(\`
          vmExport(1, (n) => { const o = {}; let i = 0; while (i < n) { o['k' + i] = i; i++; } return o; });
          vmExport(2, (x) => x + 1);
        \`), {});
        // 2,100 properties take the guest heap past the 48 kB pressure mark;
        // the collection that follows cannot compact the object.
        let returned = false;
        try { vm.exports[1](2100); returned = true; } catch (e) { assert.match(e.message, /MVM_E_ALLOCATION_TOO_LARGE|MVM_E_MALLOC_FAIL/); }
        let poisoned = false;
        try { vm.exports[2](1); } catch (e) { poisoned = true; }
        assert.ok(!(returned && poisoned), 'the call returned normally, yet the VM was already poisoned by a fatal error during it');
      `);
    });
});

// ---------------------------------------------------------------------------

describe('argument counts', () => {
  const params = (n) => Array.from({ length: n }, (_, i) => 'a' + i).join(', ');

  test('host -> guest: 126 arguments work, 127 and more are MVM_E_TOO_MANY_ARGUMENTS and the guest is not called', () => {
    isolated(`
      const vm = Microvium.restore(compile(\`
        let calls = 0;
        vmExport(1, (${params(15)}) => { calls++; return a0 + a1 + a13 + a14; });
        vmExport(2, () => calls);
      \`), {});
      const f = vm.exports[1];
      const args = Array.from({ length: 126 }, (_, i) => i + 1);
      assert.equal(f(...args), 1 + 2 + 14 + 15);
      for (const n of [127, 128, 255, 256, 1000, 65536]) {
        const e = throwsMvm(() => f(...Array(n).fill(1)), 'MVM_E_TOO_MANY_ARGUMENTS', n + ' arguments');
        assert.match(e.detail, new RegExp('\\\\b' + n + '\\\\b'));
      }
      assert.equal(vm.exports[2](), 1, 'only the valid call ran');
      assert.equal(f(...args), 32);
    `);
  });

  test('guest -> host: a call with 126 arguments delivers them all', () => {
    isolated(`
      let got;
      const vm = Microvium.restore(compile(\`
        const h = vmImport(1);
        vmExport(1, () => h(${Array.from({ length: 126 }, (_, i) => `${i} * 3`).join(', ')}));
        vmExport(2, (x) => h(x, 'two', [3], { four: 4 }));
      \`), { 1: (...a) => { got = a; return a.length; } });
      assert.equal(vm.exports[1](), 126);
      assert.deepEqual(got, Array.from({ length: 126 }, (_, i) => i * 3));
      assert.equal(vm.exports[2](1), 4);
      assert.deepEqual(got, [1, 'two', [3], { four: 4 }]);
    `);
  });

  test('a guest function that reads its 16th parameter and beyond gets its arguments, or undefined', () => {
    // microvium 8.0.0 did not implement LOAD_ARG_2 (argument index above 15,
    // where index 0 is `this`), which the compiler emits for the 16th
    // parameter on (c/patches/load-arg-2.patch; more in engine-arrays.test.js).
    isolated(`
      const s = compile(\`
        vmExport(1, (${params(16)}) => a15);
        vmExport(3, (${params(15)}) => a14);
        vmExport(2, (x) => x + 1);
      \`);
      const vm = Microvium.restore(s, {});
      assert.equal(vm.exports[3](...Array(14).fill(0), 15), 15, 'the 15th parameter is readable');
      assert.equal(vm.exports[1](...Array(15).fill(1), 16), 16, 'the 16th parameter is readable');
      assert.equal(vm.exports[1](1, 2), undefined, 'a 16th parameter without an argument is undefined');
      assert.equal(vm.exports[2](1), 2);
    `);
  });
});

// ---------------------------------------------------------------------------

describe('hostile host values passed in', () => {
  test('nested 100,000 levels deep or cyclic: TypeError, the guest is unchanged, the VM goes on', () => {
    isolated(`
      let ret;
      const vm = Microvium.restore(compile(${GUEST}), { 1: () => ret });
      const deepObj = {}; let c = deepObj;
      for (let i = 0; i < 100000; i++) { c.x = {}; c = c.x; }
      const deepArr = []; let a = deepArr;
      for (let i = 0; i < 100000; i++) { const n = []; a.push(n); a = n; }
      const deepMixed = { v: [] }; let m = deepMixed.v;
      for (let i = 0; i < 50000; i++) { const o = { v: [] }; m.push(o); m = o.v; }
      const cyc = { a: 1 }; cyc.self = cyc;
      const cycArr = [1]; cycArr.push([cycArr]);
      const cycLong = { n: 0 }; let t = cycLong; for (let i = 1; i < 60; i++) { t.next = { n: i }; t = t.next; } t.next = cycLong;
      const err = new Error('e'); err.cause = { err };
      const values = [['deep object', deepObj, /deep|nest|depth/i], ['deep array', deepArr, /deep|nest|depth/i],
        ['deep mixed', deepMixed, /deep|nest|depth/i], ['cycle', cyc, /cycl|circular/i],
        ['array cycle', cycArr, /cycl|circular/i], ['60-long cycle', cycLong, /cycl|circular|deep|nest/i],
        ['cycle through an Error', err, /cycl|circular/i]];
      for (const [label, value, re] of values) {
        for (const [how, fn] of [['argument', () => vm.exports[1](value)], ['wrapped argument', () => vm.exports[1]({ w: [value] })],
          ['property write', () => { vm.exports[4].v = value; }], ['import result', () => { ret = value; return vm.exports[5](); }]]) {
          let e;
          assert.throws(fn, (x) => { e = x; return true; }, label + ' as ' + how);
          assert.ok(e instanceof TypeError, label + ' as ' + how + ': ' + (e && e.stack));
          assert.match(e.message, re, label + ' as ' + how);
          assert.doesNotMatch(e.message, /Maximum call stack/);
        }
      }
      assert.equal(vm.exports[2](), 0, 'the guest was not called');
      assert.deepEqual(Object.keys(vm.exports[4]), ['keep']);
      ret = 5;
      assert.equal(vm.exports[5](), 5);
      assert.equal(vm.exports[1](7), 7);
      vm.runGC(true);
    `);
  });

  test('getters that throw, re-enter the VM or poison it while their object is being copied in', () => {
    isolated(`
      const s = compile(${GUEST});
      const vm = Microvium.restore(s, { 1: () => 0 });
      assert.throws(() => vm.exports[1]({ a: 1, get b() { throw new Error('getter boom'); } }), /getter boom/);
      assert.equal(vm.exports[2](), 0);
      const o = vm.exports[1]({ a: 'k', get b() { for (let i = 0; i < 200; i++) vm.exports[1]({ i, s: 'garbage' + i }); vm.runGC(true); return 'b'; }, c: 'z' });
      assert.deepEqual({ ...o }, { a: 'k', b: 'b', c: 'z' });
      const poisonSrc = compile('vmExport(1, (x) => x); vmExport(2, () => { let h; while (true) h = { next: h }; }); vmExport(3, (x) => x + 1);');
      const p = Microvium.restore(poisonSrc, {});
      let inner;
      let e;
      assert.throws(() => p.exports[1]({ a: 1, get b() { try { p.exports[2](); } catch (x) { inner = x; } return 2; }, c: 'after' }), (x) => { e = x; return true; });
      assert.equal(inner.code, 'MVM_E_OUT_OF_MEMORY');
      assert.ok(e instanceof MicroviumError && /MVM_E_OUT_OF_MEMORY/.test(e.message), e && e.stack);
      assertPoisoned(p, 'MVM_E_OUT_OF_MEMORY');
      assert.equal(vm.exports[3](1), 2);
    `);
  });

  test('a getter that disposes the VM while its object is being copied in: a clear error, no crash', () => {
      for (const how of ['argument', 'array element', 'Error property', 'property write']) {
        isolated(`
          const vm = Microvium.restore(compile(${GUEST}), { 1: () => 0 });
          const evil = { a: 1, get b() { vm.dispose(); return 'b'; }, c: 3 };
          const err = new Error('x'); Object.defineProperty(err, 'extra', { enumerable: true, get() { vm.dispose(); return 1; } });
          const target = vm.exports[4];
          const fn = {
            'argument': () => vm.exports[1](evil),
            'array element': () => vm.exports[1]([1, evil, 3]),
            'Error property': () => vm.exports[1](err),
            'property write': () => { target.v = evil; },
          }[${JSON.stringify(how)}];
          assert.throws(fn, (e) => e instanceof Error && /dispos/i.test(e.message), ${JSON.stringify(how)});
          assert.throws(() => vm.exports[3](1), /dispos/i);
        `);
      }
    });
});

// ---------------------------------------------------------------------------

describe('recursion through host functions', () => {
  const REC = JSON.stringify(`
    const h = vmImport(1);
    vmExport(1, (n) => n <= 0 ? 0 : h(n - 1) + 1);
    vmExport(2, (x) => x * 2);
    vmExport(3, (n) => { const r = (k) => k <= 0 ? h(n) : r(k - 1) + 0; return r(200); });
  `);

  test('guest -> host -> guest ... 1000 levels: MVM_E_STACK_OVERFLOW naming the nesting, no crash, the VM goes on', () => {
    isolated(`
      const s = compile(${REC});
      let deepest = 0;
      const vm = Microvium.restore(s, { 1: (n) => { deepest++; return vm.exports[1](n); } });
      for (let round = 0; round < 20; round++) {
        deepest = 0;
        const e = throwsMvm(() => vm.exports[1](1000), 'MVM_E_STACK_OVERFLOW', 'round ' + round);
        assert.match(e.detail, /nest|deep|depth/i);
        assert.ok(deepest >= 20 && deepest < 1000, 'nesting reached ' + deepest);
        assert.equal(vm.exports[2](21), 42);
        assert.equal(vm.exports[1](10), 10);
      }
      // Every level also uses a deep guest stack.
      const vm3 = Microvium.restore(s, { 1: (n) => vm3.exports[3](n) });
      throwsMvm(() => vm3.exports[3](0), 'MVM_E_STACK_OVERFLOW');
      assert.equal(vm3.exports[2](2), 4);
      assert.equal(vm3.getMemoryStats().stackHeight, 0);
    `);
  });

  test('1000 levels where every host level catches, or ping-pong between two VMs: terminates cleanly', () => {
    isolated(`
      const s = compile(${REC});
      let caught = 0;
      const vm = Microvium.restore(s, { 1: (n) => { try { return vm.exports[1](n); } catch (e) { caught++; assert.equal(e.code, 'MVM_E_STACK_OVERFLOW'); return 0; } } });
      const depth = vm.exports[1](1000);
      assert.ok(caught >= 1 && depth >= 20 && depth < 1000, 'depth ' + depth + ', caught ' + caught);
      assert.equal(vm.exports[2](4), 8);
      let a, b;
      a = Microvium.restore(s, { 1: (n) => b.exports[1](n) });
      b = Microvium.restore(s, { 1: (n) => a.exports[1](n) });
      throwsMvm(() => a.exports[1](1000), 'MVM_E_STACK_OVERFLOW');
      assert.equal(a.exports[1](20), 20);
      assert.equal(b.exports[1](20), 20);
    `);
  });
});
