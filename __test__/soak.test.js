'use strict';
// Issue 6, point 4: soak test. One million calls that mix strings, plain
// objects, arrays and Uint8Arrays in both directions, every result dropped,
// yielding to the event loop every 10,000 calls (so Node-API finalizers run).
// The process's RSS at the end must be within a small bound of its value
// after the warm-up, and the guest heap and the number of live handles must
// not grow.
//
// Run: node --expose-gc --test __test__/soak.test.js
// SOAK_CALLS=200000 shortens it; the figures are printed as a diagnostic.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile } = require('./helpers');

const MB = 1024 * 1024;
const CALLS = Number(process.env.SOAK_CALLS) || 1000000;
const WARMUP = Math.min(100000, CALLS / 5);
// Under AddressSanitizer (scripts/test-asan.sh) freed memory sits in a
// quarantine and RSS says nothing about the addon; LeakSanitizer checks leaks.
const RSS_BOUND = process.env.ASAN_SKIP_RSS ? Infinity : 30 * MB;

const tick = () => new Promise((resolve) => setImmediate(resolve));
const liveHandles = (vm) => (Microvium.__internals && Microvium.__internals.liveHandles ? Microvium.__internals.liveHandles(vm) : 0);

async function settle(vm) {
  for (let i = 0; i < 3; i++) {
    global.gc();
    await tick();
  }
  vm.runGC();
}

test(`soak: ${CALLS.toLocaleString('en')} mixed calls with dropped results keep RSS, guest heap and handles bounded`, { timeout: 180000 }, async (t) => {
  assert.equal(typeof global.gc, 'function', 'run with node --expose-gc');
  let hostCalls = 0;
  const vm = Microvium.restore(compile(`
    const h = vmImport(1);
    vmExport(1, (s) => s + '!');
    vmExport(2, (o) => ({ sum: o.a + o.nested.list[0], s: o.s + 'x', list: [o.a, o.s] }));
    vmExport(3, (a) => [a[0], a[2], a.length, { last: a[1] }]);
    vmExport(4, (u) => { const r = Microvium.newUint8Array(4); r[0] = u[0]; r[1] = u[1]; r[3] = 255; return r; });
    vmExport(5, (i) => h(i, 'arg' + i, { i: i }, [i]));
  `), {
    1: (i, s, o, a) => { hostCalls++; return { back: s, n: o.i + a[0] }; },
  });
  const [fStr, fObj, fArr, fU8, fHost] = [1, 2, 3, 4, 5].map((id) => vm.exports[id]);

  const one = (i) => {
    switch (i % 5) {
      case 0: return fStr('s' + (i % 1000));
      case 1: return fObj({ a: i % 1000, s: 'k', nested: { list: [1, 2] } });
      case 2: return fArr([i % 1000, 'mid', true]);
      case 3: return fU8(new Uint8Array([i & 255, 7, 9]));
      default: return fHost(i % 1000);
    }
  };
  // Spot checks, so that the calls really do their work.
  const check = (i) => {
    const r = one(i);
    switch (i % 5) {
      case 0: assert.equal(r, 's' + (i % 1000) + '!'); break;
      case 1: assert.equal(r.sum, (i % 1000) + 1); assert.equal(r.list[1], 'k'); break;
      case 2: assert.equal(r[3].last, 'mid'); assert.equal(r[2], 3); break;
      case 3: assert.deepEqual([...r], [i & 255, 7, 0, 255]); break;
      default: assert.equal(r.n, 2 * (i % 1000)); assert.equal(r.back, 'arg' + (i % 1000));
    }
  };

  const t0 = Date.now();
  let early;
  for (let i = 1; i <= CALLS; i++) {
    one(i);
    if (i % 10000 === 0) {
      check(i + 1);
      check(i + 2);
      check(i + 3);
      check(i + 4);
      check(i + 5);
      await tick();
    }
    if (i === WARMUP) {
      await settle(vm);
      early = { rss: process.memoryUsage().rss, heap: vm.getMemoryStats().virtualHeapUsed, live: liveHandles(vm), t: Date.now() - t0 };
    }
  }
  await settle(vm);
  const late = { rss: process.memoryUsage().rss, heap: vm.getMemoryStats().virtualHeapUsed, live: liveHandles(vm), t: Date.now() - t0 };
  const growth = late.rss - early.rss;
  t.diagnostic(`RSS after ${WARMUP.toLocaleString('en')} calls: ${(early.rss / MB).toFixed(1)} MB; after ${CALLS.toLocaleString('en')}: ` +
    `${(late.rss / MB).toFixed(1)} MB (${growth >= 0 ? '+' : ''}${(growth / MB).toFixed(1)} MB); guest heap ${early.heap} -> ${late.heap} B; ` +
    `live handles ${early.live} -> ${late.live}; ${(late.t / 1000).toFixed(1)} s`);
  assert.ok(hostCalls >= CALLS / 5, 'the guest called the host');
  assert.ok(growth < RSS_BOUND, `RSS grew ${(growth / MB).toFixed(1)} MB between ${WARMUP} and ${CALLS} calls`);
  assert.ok(late.heap <= early.heap + 256, `guest heap ${early.heap} B after warm-up, ${late.heap} B at the end`);
  assert.ok(late.live <= early.live + 4, `live handles ${early.live} after warm-up, ${late.live} at the end`);
  vm.dispose();
});
