'use strict';
// The thread's shared buffer ("The shared buffer" in src/js.rs): the
// epoch behind the read cache of object proxies (lib/membrane.js), and the
// calls the JS layer describes there. A property read through a held proxy
// is remembered until anything could have changed it: each scenario drives
// a guest program from the host, reading held objects before and after
// every kind of change, and runs the same host code against plain Node.js
// running the same source; the reads must agree (a stale read shows up as
// a difference). Calls must reach the right callee with the right
// arguments even when host code runs in between.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const vmModule = require('node:vm');
const Microvium = require('..');
const { compile, tick, errorOf } = require('./helpers');

// The guest source runs in the addon and in a node:vm context; `scenario`
// gets the exports and `log` and returns when done (it may be async).
async function both(source, imports, scenario) {
  const nodeLog = [];
  const nodeExports = {};
  const context = vmModule.createContext({
    vmImport: (id) => imports(nodeLog, () => nodeExports)[id],
    vmExport: (id, value) => { nodeExports[id] = value; },
  });
  vmModule.runInContext(source, context);
  await scenario(nodeExports, nodeLog);

  const guestLog = [];
  let vm;
  vm = Microvium.restore(compile(source), imports(guestLog, () => vm.exports));
  await scenario(vm.exports, guestLog);
  assert.deepEqual(guestLog, nodeLog);
  assert.ok(guestLog.length > 0);
  return vm;
}

const noImports = () => ({});

test('a guest call that changes a held object: the next read sees the change', async () => {
  const src = `
    const o = { x: 1, y: 'a', z: true };
    vmExport(1, () => o);
    vmExport(2, (v) => { o.x = v; o.y = o.y + v; o.z = !o.z; });
    vmExport(3, () => 0);`;
  await both(src, noImports, (e, log) => {
    const o = e[1]();
    for (let i = 0; i < 5; i++) {
      log.push(o.x, o.y, o.z, o.x, o.y, o.z);
      e[2](i * 3);
      log.push(o.x, o.y, o.z);
      e[3]();
      log.push(o.x, o.y, o.z);
    }
  });
});

test('changes made while a host function runs, and after it returns to the guest', async () => {
  const src = `
    const o = { x: 0 };
    const seen = vmImport(1);
    vmExport(1, () => o);
    vmExport(2, () => { o.x = 1; seen(); o.x = 2; seen(); o.x = 3; });`;
  let held;
  await both(src, (log) => ({ 1: () => { log.push('in', held.x, held.x); } }), (e, log) => {
    held = e[1]();
    log.push(held.x);
    e[2]();
    log.push('after', held.x);
  });
});

test('a host function that reads, then the guest changes the object before the next import call', async () => {
  // The guest calls two different imports; the second reads what the guest
  // changed after the first returned.
  const src = `
    const o = { n: 0 };
    const a = vmImport(1);
    const b = vmImport(2);
    vmExport(1, () => o);
    vmExport(2, () => { for (let i = 0; i < 4; i++) { a(); o.n = o.n + 1; b(); } });`;
  let held;
  await both(src, (log) => ({ 1: () => log.push('a', held.n), 2: () => log.push('b', held.n) }), (e, log) => {
    held = e[1]();
    e[2]();
    log.push(held.n);
  });
});

test('writes through the host: proxy set, Object.assign, defineProperty', async () => {
  const src = `
    const o = { x: 1, y: 2 };
    vmExport(1, () => o);
    vmExport(2, () => o.x + o.y);`;
  await both(src, noImports, (e, log) => {
    const o = e[1]();
    log.push(o.x, o.y);
    o.x = 10;
    log.push(o.x, e[2]());
    Object.assign(o, { y: 20 });
    log.push(o.y, e[2]());
    Object.defineProperty(o, 'x', { value: 30, writable: true, enumerable: true, configurable: true });
    log.push(o.x, o.y, e[2]());
  });
});

test('nested objects, and values that change type (primitive, object, undefined)', async () => {
  const src = `
    const inner = { v: 1 };
    const o = { inner: inner, w: 5 };
    vmExport(1, () => o);
    vmExport(2, (k) => {
      if (k === 0) inner.v = 2;
      if (k === 1) o.w = { deep: 7 };
      if (k === 2) o.w = undefined;
      if (k === 3) o.w = 'str';
      if (k === 4) o.inner = { v: 99 };
    });`;
  await both(src, noImports, (e, log) => {
    const o = e[1]();
    const inner = o.inner;
    const show = () => {
      const w = o.w;
      log.push(inner.v, o.inner.v, typeof w === 'object' && w !== null ? ['object', w.deep] : w);
    };
    show();
    for (let k = 0; k < 5; k++) {
      show();
      e[2](k);
      show();
    }
  });
});

test('more names than the cache keeps, read repeatedly', async () => {
  const names = Array.from({ length: 20 }, (_, i) => 'p' + i);
  const src = `
    const o = { ${names.map((n, i) => `${n}: ${i}`).join(', ')} };
    vmExport(1, () => o);
    vmExport(2, (d) => { ${names.map((n) => `o.${n} = o.${n} + d;`).join(' ')} });`;
  await both(src, noImports, (e, log) => {
    const o = e[1]();
    for (let round = 0; round < 3; round++) {
      for (let rep = 0; rep < 3; rep++) for (const n of names) log.push(o[n]);
      e[2](round + 1);
    }
  });
});

test('an async guest function that changes an object after awaiting the host', async () => {
  const src = `
    const o = { step: 0 };
    const wait = vmImport(1);
    vmExport(1, () => o);
    vmExport(2, async () => { o.step = 1; await wait(); o.step = 2; await wait(); o.step = 3; });`;
  await both(src, (log) => ({ 1: async () => { await tick(); } }), async (e, log) => {
    const o = e[1]();
    const p = e[2]();
    log.push(o.step);
    for (let i = 0; i < 6; i++) {
      await tick();
      log.push(o.step);
    }
    await p;
    log.push(o.step);
  });
});

test('a read after vm.release, vm.dispose or on another VM gives what an uncached read gives', () => {
  const src = `
    const o = { x: 1 };
    vmExport(1, () => o);
    vmExport(2, (v) => { o.x = v; });`;
  const a = Microvium.restore(compile(src), {});
  const b = Microvium.restore(compile(src), {});
  const oa = a.exports[1]();
  const ob = b.exports[1]();
  assert.equal(oa.x + oa.x, 2);
  assert.equal(ob.x, 1);
  // A call into another VM leaves this one's values as they are.
  b.exports[2](5);
  assert.equal(oa.x, 1);
  assert.equal(ob.x, 5);

  // Released: the cached read must not hide that the value is gone.
  const released = a.exports[1]();
  assert.equal(released.x, 1);
  a.release(released);
  const afterRelease = errorOf(() => released.x);
  assert.match(afterRelease.message, /released/);

  // Disposed: the same error as a read that was never cached.
  const fresh = Microvium.restore(compile(src), {});
  const cached = fresh.exports[1]();
  const uncached = fresh.exports[1]();
  assert.equal(cached.x, 1);
  fresh.dispose();
  const e1 = errorOf(() => cached.x);
  const e2 = errorOf(() => uncached.x);
  assert.ok(e1 instanceof Error, 'a read after dispose throws');
  assert.equal(e1.message, e2.message);
  b.dispose();
});

test('the cache holds across reads only: a read between two calls of another export is fresh', () => {
  // A realistic loop: read config, call the guest, read again, a million
  // times over; every read must agree with what the guest holds.
  const src = `
    const cfg = { limit: 0, label: 'L0' };
    vmExport(1, () => cfg);
    vmExport(2, (i) => { cfg.limit = i; cfg.label = 'L' + i; return i; });`;
  const vm = Microvium.restore(compile(src), {});
  const cfg = vm.exports[1]();
  const set = vm.exports[2];
  for (let i = 0; i < 20000; i++) {
    set(i);
    if (cfg.limit !== i || cfg.label !== 'L' + i || cfg.limit !== i) {
      assert.fail(`stale read at ${i}: ${cfg.limit} ${cfg.label}`);
    }
  }
  vm.dispose();
});

test('calls stay right when host code runs between the JS layer and the native side', () => {
  // A spread runs Array.prototype[Symbol.iterator]; here it calls into the
  // VM itself (the shared buffer must not carry a call across that).
  const src = `
    vmExport(1, (a, b, c, d) => 'four:' + a + b + c + d);
    vmExport(2, (x) => x * 2);`;
  const vm = Microvium.restore(compile(src), {});
  const four = vm.exports[1];
  const double = vm.exports[2];
  const original = Array.prototype[Symbol.iterator];
  let calls = 0;
  Array.prototype[Symbol.iterator] = function () {
    calls++;
    double(21);
    return original.call(this);
  };
  try {
    assert.equal(four(1, 2, 3, 4), 'four:1234');
    assert.equal(four('a', 'b', 'c', 'd', 'e'), 'four:abcd');
  } finally {
    Array.prototype[Symbol.iterator] = original;
  }
  assert.ok(calls > 0, 'the patched iterator ran');
  assert.equal(double(4), 8);
  vm.dispose();
});

test('a result handed back through the buffer belongs to its own call, even with calls nested inside', async () => {
  // Small integers come back through the shared buffer; a call that
  // returns anything else (undefined too) must not pick up what a nested
  // call left there.
  const src = `
    const nested = vmImport(1);
    vmExport(1, (n) => n + 1);
    vmExport(2, () => { nested(); });
    vmExport(3, () => { nested(); return 'x'; });
    vmExport(4, () => { nested(); return 2.5; });
    vmExport(5, () => { nested(); return null; });
    vmExport(6, (k) => { nested(); return k; });
    vmExport(7, () => { nested(); return 100000; });
    vmExport(8, (a, b, c) => { nested(); return a - b - c; });
    vmExport(9, () => ({ m: function (n) { nested(); return n * 3; } }));`;
  const imports = (log, exportsOf) => ({
    // Called as plain functions (a method call takes another path).
    1: () => { const plus1 = exportsOf()[1]; log.push(plus1(41), plus1(-8193)); },
  });
  await both(src, imports, (e, log) => {
    // Plain calls (`e[2]()` would be a method call, which takes another path).
    const [, f1, f2, f3, f4, f5, f6, f7, f8, f9] = Array.from({ length: 10 }, (_, i) => e[i]);
    for (let round = 0; round < 3; round++) {
      log.push(f2(), f3(), f4(), f5(), f6(7), f6(undefined), f6(true), f7());
      log.push(f1(-8192), f1(8190), f1(8191), f1(-8193), f1(0), f1(-1));
      log.push(f8(1, 2, 3), f8(8000, -191, 0), f6('s'), f1(0.5));
      const o = f9();
      log.push(o.m(5), o.m(2731), o.m(-3000));
    }
  });
});
