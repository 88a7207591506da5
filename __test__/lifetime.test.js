'use strict';
// Lifetime: dispose() and [Symbol.dispose](), every later
// use throws a clear error, dispose during a call is safe, and undisposed VMs
// are freed by the garbage collector (memory stays bounded).

const test = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, runIsolated, gc } = require('./helpers');

const status = (vm) => Microvium.__internals.status(vm);
const DISPOSED = /dispos/i;
const isDisposedError = (e) => e instanceof Error && !(e instanceof TypeError && /Cannot read|is not a function/.test(e.message)) && DISPOSED.test(e.message);

const SRC = `
  const host = vmImport(1);
  let count = 0;
  let obj = { a: 1, arr: [1, 2], u: undefined };
  class K { constructor() { this.k = 1; } static s() { return 2; } }
  vmExport(1, () => { if (!obj.u) obj.u = Microvium.newUint8Array(4); return obj; });
  vmExport(2, (x) => { host(); count = count + 1; return count; });
  vmExport(3, K);
  vmExport(4, () => { count = count + 1; return count; });
  vmExport(5, () => count);
  vmExport(6, () => { try { host(); } catch (e) { count = count + 1000; return 'caught'; } return 'returned'; });
`;

/** Asserts every use of a disposed VM and of what came out of it throws clearly. */
function assertAllUsesThrow(vm, { o, arr, u, f, K }) {
  const uses = {
    'call an export read before': () => f(1),
    'read an export not read before': () => vm.exports[4],
    'call it': () => vm.exports[5](),
    'proxy get': () => o.a,
    'proxy set': () => { o.a = 2; },
    'proxy has': () => 'a' in o,
    'proxy keys': () => Object.keys(o),
    'JSON.stringify': () => JSON.stringify(o),
    'array length': () => arr.length,
    'array index': () => arr[0],
    'array iterate': () => [...arr],
    'Uint8Array length': () => u.length,
    'Uint8Array slice': () => u.slice(),
    'Uint8Array set': () => u.set([1]),
    'new class': () => new K(),
    'static member': () => K.s(),
    createSnapshot: () => vm.createSnapshot(),
    runGC: () => vm.runGC(),
    getMemoryStats: () => vm.getMemoryStats(),
    stopAfterNInstructions: () => vm.stopAfterNInstructions(10),
    getInstructionCountRemaining: () => vm.getInstructionCountRemaining(),
    setBreakpoint: () => vm.setBreakpoint(0x40),
    removeBreakpoint: () => vm.removeBreakpoint(0x40),
    currentAddress: () => vm.currentAddress,
  };
  const failures = [];
  for (const [name, use] of Object.entries(uses)) {
    try {
      const r = use();
      failures.push(`${name}: no error (returned ${typeof r})`);
    } catch (e) {
      if (!isDisposedError(e)) failures.push(`${name}: unclear error ${e && e.name}: ${e && e.message}`);
    }
  }
  assert.deepEqual(failures, []);
}

function restoreWithValues(imports = { 1: () => {} }) {
  const vm = Microvium.restore(compile(SRC), imports);
  const o = vm.exports[1]();
  return { vm, o, arr: o.arr, u: o.u, f: vm.exports[2], K: vm.exports[3] };
}

test('dispose(): every later use of the VM, its exports and its values throws a clear error', () => {
  const v = restoreWithValues();
  assert.equal(v.f(1), 1);
  assert.equal(v.o.a, 1);
  assert.equal(status(v.vm), 'live');
  v.vm.dispose();
  assert.equal(status(v.vm), 'disposed');
  assertAllUsesThrow(v.vm, v);
  // Disposing again is harmless; versions are still readable.
  v.vm.dispose();
  assert.equal(v.vm.engineVersion, '8.0.0');
});

test('[Symbol.dispose]() is dispose()', () => {
  assert.equal(typeof Symbol.dispose, 'symbol');
  const v = restoreWithValues();
  assert.equal(typeof v.vm[Symbol.dispose], 'function');
  assert.equal(v.f(1), 1);
  v.vm[Symbol.dispose]();
  assert.equal(status(v.vm), 'disposed');
  assertAllUsesThrow(v.vm, v);
  v.vm[Symbol.dispose]();
});

test('other VMs are unaffected by a dispose', () => {
  const a = restoreWithValues();
  const b = restoreWithValues();
  a.vm.dispose();
  assert.equal(b.f(1), 1);
  assert.equal(b.o.arr[1], 2);
  assert.throws(() => a.f(1), isDisposedError);
});

test('dispose inside a host function called by the guest is safe', () => {
  let vm;
  let inner;
  vm = Microvium.restore(compile(SRC), {
    1: () => {
      vm.dispose();
      try { vm.exports[5](); } catch (e) { inner = e; }
    },
  });
  const f = vm.exports[2];
  const o = vm.exports[1]();
  assert.throws(() => f(1), isDisposedError);
  assert.ok(isDisposedError(inner), 'a use inside the host function after dispose throws clearly');
  assert.equal(status(vm), 'disposed');
  assert.throws(() => o.a, isDisposedError);
  assert.throws(() => f(1), isDisposedError);
  gc();
});

test('dispose inside a host function: the guest does not go on (even with a try/catch)', () => {
  let vm;
  vm = Microvium.restore(compile(SRC), { 1: () => { vm.dispose(); } });
  assert.throws(() => vm.exports[6](), isDisposedError);
  assert.equal(status(vm), 'disposed');
});

test('dispose inside nested calls is safe', () => {
  let vm;
  let depth = 0;
  vm = Microvium.restore(compile(SRC), {
    1: () => {
      depth++;
      if (depth < 5) vm.exports[2]();
      else vm.dispose();
    },
  });
  assert.throws(() => vm.exports[2](), isDisposedError);
  assert.equal(status(vm), 'disposed');
});

test('dispose inside a breakpoint callback is safe and ends the call', () => {
  const src = `let n = 0; vmExport(1, () => { n = n + 1; n = n + 1; return n; });`;
  const bytes = compile(src);
  const mv = require('microvium/dist/lib');
  const dis = mv.Microvium.decodeSnapshot({ data: Buffer.from(bytes) }).disassembly;
  const m = /^([0-9a-f]{4})\s+\d+\s+StoreGlobal/m.exec(dis);
  assert.ok(m, 'found a StoreGlobal');
  let vm2;
  vm2 = Microvium.restore(bytes, {}, { breakpointHit() { vm2.dispose(); } });
  vm2.setBreakpoint(parseInt(m[1], 16));
  // Like a dispose in a host function, the call must not carry on and
  // return a value computed by a freed VM.
  assert.throws(() => vm2.exports[1](), isDisposedError);
  assert.equal(status(vm2), 'disposed');
  assert.throws(() => vm2.exports[1](), isDisposedError);
});

test('dispose from inside, in a child process under GC pressure, does not crash', () => {
  const r = runIsolated(`
    const bytes = compile(${JSON.stringify(SRC)});
    for (let i = 0; i < 300; i++) {
      let vm;
      vm = Microvium.restore(bytes, { 1: () => { const o = vm.exports[1](); vm.dispose(); global.gc(); try { o.a; } catch {} } });
      const f = vm.exports[2];
      try { f(1); } catch (e) { if (!/dispos/i.test(e.message)) throw e; }
      if (i % 50 === 0) global.gc();
    }
    console.log('done');
  `, { args: ['--expose-gc'] });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'done');
});

test('an undisposed VM stays alive while something that came out of it is held', async () => {
  const bytes = compile(SRC);
  let f;
  let o;
  (() => {
    const vm = Microvium.restore(bytes, { 1: () => {} });
    f = vm.exports[4];
    o = vm.exports[1]();
  })();
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(f(), 1);
  assert.equal(f(), 2);
  assert.equal(o.arr[1], 2);
});

// Under AddressSanitizer (scripts/test-asan.sh) freed memory sits in a
// quarantine and RSS says nothing about the addon; LeakSanitizer checks leaks.
const RSS_BOUND_MB = process.env.ASAN_SKIP_RSS ? Infinity : 40;

const CHURN = `
  const bytes = compile(${JSON.stringify(SRC)});
  const once = (i) => {
    const vm = Microvium.restore(bytes, { 1: () => vm });
    const o = vm.exports[1]();
    o.a = i;
    o.arr[0] = { i };
    const r = vm.exports[2](o) + o.arr.length;
    if (typeof DISPOSE !== 'undefined') vm.dispose();
    return r;
  };
  const tick = () => new Promise((r) => setImmediate(r));
  const mb = () => process.memoryUsage().rss / 1048576;
  (async () => {
    for (let i = 0; i < 2000; i++) once(i);
    global.gc(); await tick(); global.gc(); await tick();
    const before = mb();
    for (let i = 0; i < 10000; i++) {
      once(i);
      if (i % 500 === 499) { global.gc(); if (YIELD) await tick(); }
    }
    global.gc(); await tick(); global.gc(); await tick();
    const after = mb();
    console.log(JSON.stringify({ before, after }));
  })();
`;

test('10,000 VMs created and dropped (with periodic gc) leave memory bounded', () => {
  const r = runIsolated(`const YIELD = true;\n${CHURN}`, { args: ['--expose-gc'], timeout: 120000 });
  assert.equal(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout);
  assert.ok(after - before < RSS_BOUND_MB, `RSS grew ${(after - before).toFixed(1)} MB (${before.toFixed(1)} -> ${after.toFixed(1)})`);
});

// Node-API finalizers wait for the event loop to turn; the engine of a VM
// whose core V8 has collected is freed at the next restore instead.
test('10,000 VMs dropped in a synchronous loop with periodic forced collections leave memory bounded',
  () => {
    const r = runIsolated(`const YIELD = false;\n${CHURN}`, { args: ['--expose-gc'], timeout: 120000 });
    assert.equal(r.status, 0, r.stderr);
    const { before, after } = JSON.parse(r.stdout);
    assert.ok(after - before < RSS_BOUND_MB, `RSS grew ${(after - before).toFixed(1)} MB (${before.toFixed(1)} -> ${after.toFixed(1)})`);
  });

test('10,000 VMs created and disposed leave memory bounded', () => {
  const r = runIsolated(`const YIELD = true; const DISPOSE = true;\n${CHURN}`, { args: ['--expose-gc'], timeout: 120000 });
  assert.equal(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout);
  assert.ok(after - before < RSS_BOUND_MB, `RSS grew ${(after - before).toFixed(1)} MB (${before.toFixed(1)} -> ${after.toFixed(1)})`);
});

test('10,000 VMs created and disposed in a synchronous loop leave memory bounded',
  () => {
    const r = runIsolated(`const YIELD = false; const DISPOSE = true;\n${CHURN}`, { args: ['--expose-gc'], timeout: 120000 });
    assert.equal(r.status, 0, r.stderr);
    const { before, after } = JSON.parse(r.stdout);
    assert.ok(after - before < RSS_BOUND_MB, `RSS grew ${(after - before).toFixed(1)} MB (${before.toFixed(1)} -> ${after.toFixed(1)})`);
  });

test('a VM reachable only through its values keeps working across collections and restores', async () => {
  const bytes = compile(`
    let n = 0;
    const o = { hits: 0 };
    vmExport(1, () => { n = n + 1; o.hits = n; return n; });
    vmExport(2, () => o);
  `);
  const held = (() => {
    const vm = Microvium.restore(bytes, {});
    return { f: vm.exports[1], o: vm.exports[2]() };
  })();
  for (let round = 0; round < 3; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    // A restore frees the engines of VMs whose core was collected: not this one.
    Microvium.restore(bytes, {});
    assert.equal(held.f(), round + 1);
    assert.equal(held.o.hits, round + 1);
  }
});

test('a guest promise nobody holds, only a promise derived from it, settles after a collection', async () => {
  const bytes = compile(`
    const wait = vmImport(1);
    vmExport(1, async () => { await wait(); return 1; });
  `);
  let resolveHost;
  const hostPromise = new Promise((resolve) => { resolveHost = resolve; });
  let guestPromise = (() => {
    const vm = Microvium.restore(bytes, { 1: async () => hostPromise });
    return vm.exports[1]();
  })();
  const outcome = guestPromise.then(() => 'fulfilled', (e) => e);
  guestPromise = null;
  // The guest awaits the host promise, which holds the VM; the VM holds its
  // pending promise, which holds the derived one.
  gc();
  Microvium.restore(bytes, { 1: async () => {} });
  resolveHost();
  assert.equal(await outcome, 'fulfilled');
});

test('`await` on a guest async call resumes when a collection runs while the guest awaits', async () => {
  const bytes = compile(`
    const wait = vmImport(1);
    vmExport(1, async (x) => { await wait(); return x * 2; });
  `);
  const vm = Microvium.restore(bytes, { 1: async () => { await new Promise((r) => setTimeout(r, 20)); } });
  const results = Promise.all([1, 2, 3].map(async (x) => await vm.exports[1](x)));
  gc();
  await new Promise((r) => setTimeout(r, 5));
  gc();
  assert.deepEqual(await results, [2, 4, 6]);
});
