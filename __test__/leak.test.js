'use strict';
// Leaks through the membrane: 200,000 calls, each returning a fresh
// guest object that the host drops, with periodic host gc(). The process's
// memory (RSS), the VM's heap (getMemoryStats().virtualHeapUsed) and the
// number of live handles after 200,000 calls must be within a small bound of
// their values after 20,000.
//
// Run with: node --expose-gc --test __test__/leak.test.js

const { test } = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, tick, gc } = require('./helpers');

const liveHandles = (vm) => Microvium.__internals.liveHandles(vm);

async function settle(vm) {
  for (let i = 0; i < 4; i++) {
    gc();
    await tick();
  }
  vm.runGC();
}

function measure(vm) {
  return {
    rss: process.memoryUsage().rss,
    heap: vm.getMemoryStats().virtualHeapUsed,
    live: liveHandles(vm),
  };
}

const MB = 1024 * 1024;

// These tests run with --expose-gc and hand the VMs their gc (opts.gc), as
// such a program may: RSS then measures the addon, not how far the default
// collector (memory.test.js) lets V8's young generation grow.
const GC = { gc: gc };

function assertBounded(early, late, label) {
  // RSS: allocator noise only (a leak of even 100 bytes per call would be 18 MB).
  assert.ok(late.rss - early.rss < 16 * MB,
    `${label}: RSS grew ${((late.rss - early.rss) / MB).toFixed(1)} MB between 20,000 and 200,000 calls`);
  assert.ok(late.heap <= early.heap + 64,
    `${label}: guest heap ${early.heap} B after 20,000 calls, ${late.heap} B after 200,000`);
  assert.ok(late.live <= early.live + 2,
    `${label}: live handles ${early.live} after 20,000 calls, ${late.live} after 200,000`);
}

test('200,000 calls returning fresh guest objects: RSS, guest heap and handles stay flat', { timeout: 60000 }, async () => {
  assert.equal(typeof gc, 'function');
  const vm = Microvium.restore(compile(`
    vmExport(1, (i) => ({ i: i, list: [i], s: 'fresh' }));
  `), {}, GC);
  const fresh = vm.exports[1];
  let early;
  for (let i = 1; i <= 200000; i++) {
    const o = fresh(i);
    if (i % 1000 === 0) {
      // Touch the value so the proxy is really used, not optimised away.
      assert.equal(o.i, i);
      assert.equal(o.list[0], i);
      gc();
      await tick();
    }
    if (i === 20000) {
      await settle(vm);
      early = measure(vm);
    }
  }
  await settle(vm);
  const late = measure(vm);
  assertBounded(early, late, 'objects');
});

test('100,000 round trips of mixed values (objects in and out, closures, Uint8Arrays) stay flat', { timeout: 60000 }, async () => {
  const vm = Microvium.restore(compile(`
    vmExport(1, (o) => { o.seen = 1; return o; });
    vmExport(2, (i) => { const u = Microvium.newUint8Array(4); u[0] = i; return u; });
    vmExport(3, (i) => () => i);
  `), {}, GC);
  const [echo, u8, closure] = [vm.exports[1], vm.exports[2], vm.exports[3]];
  let early;
  for (let i = 1; i <= 100000; i++) {
    const o = echo({ i, name: 'n' + i, nested: [i, { k: 'v' }] });
    const u = u8(i & 255);
    const f = closure(i);
    if (i % 500 === 0) {
      assert.equal(o.seen, 1);
      assert.equal(o.nested[1].k, 'v');
      assert.equal(u.slice()[0], i & 255);
      assert.equal(f(), i);
      gc();
      await tick();
    }
    if (i === 10000) {
      await settle(vm);
      early = measure(vm);
    }
  }
  await settle(vm);
  assertBounded(early, measure(vm), 'mixed');
});
