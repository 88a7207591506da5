'use strict';
// Sandbox limits (issue 15): vm.setTimeLimit(ms), restore's opts.maxHeapSize
// and opts.interrupt. What the guest computes is compared with plain Node.js
// running the same function; timing is only ever bounded generously (the
// machine is slow and shared): the stop latency is the bench's business.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('node:worker_threads');
const Microvium = require('..');
const { compile, errorOf } = require('./helpers');

const { MicroviumError } = Microvium;
const status = (vm) => Microvium.__internals.status(vm);

const TIME_LIMIT = 'MVM_E_TIME_LIMIT_REACHED';
const INTERRUPTED = 'MVM_E_INTERRUPTED';

function assertLimitError(e, code) {
  assert.ok(e instanceof MicroviumError, `expected a MicroviumError, got ${e && e.stack || e}`);
  assert.equal(e.code, code);
}

/** Busy-waits `ms` milliseconds of wall-clock time (a slow host function). */
function spin(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

// Export 2 computes with its argument; `sum` is the same function, run by
// Node: the reference for "the VM still works and computes what JS does".
function sum(n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += i * 3 % 7;
  return s;
}

const SOURCE = `
  const host = vmImport(1);
  const hostAsync = vmImport(2);
  ${sum.toString()}
  vmExport(1, () => { while (true) {} });
  vmExport(2, sum);
  vmExport(3, (x) => { try { while (true) {} } catch (e) { return 'caught'; } });
  vmExport(4, (x) => { const r = host(x); return [r, sum(10)]; });
  vmExport(5, (x) => { try { return host(x); } catch (e) { return 'guest caught ' + e; } });
  vmExport(6, async (x) => { const r = await hostAsync(x); if (x === 'loop') { while (true) {} } return r + sum(10); });
  vmExport(7, () => { const a = []; while (true) a.push([a.length, a.length + 1]); });
  vmExport(8, (n) => { const a = []; for (let i = 0; i < n; i++) a.push([i, i + 1]); return a.length; });
  vmExport(9, (n) => { let last; for (let i = 0; i < n; i++) last = [i, [i]]; return last[0]; });
  vmExport(10, (i) => [i, [i]]);
`;
const snapshot = compile(SOURCE);

function restore(imports = {}, opts) {
  return Microvium.restore(snapshot, { 1: () => undefined, 2: async (x) => x, ...imports }, opts);
}

// ---------------------------------------------------------------------------
// vm.setTimeLimit(ms) / vm.getTimeLimit()
// ---------------------------------------------------------------------------

test('setTimeLimit: off (-1) by default; getTimeLimit reads back what was set', () => {
  const vm = restore();
  assert.equal(vm.getTimeLimit(), -1);
  for (const ms of [0, 10, 1.5, 50, 1e12, -1]) {
    vm.setTimeLimit(ms);
    assert.equal(vm.getTimeLimit(), ms);
  }
});

test('setTimeLimit: anything but a finite number >= 0 or -1 is refused, and the limit is unchanged', () => {
  const vm = restore();
  vm.setTimeLimit(25);
  for (const bad of ['10', null, undefined, {}, 10n]) {
    assert.throws(() => vm.setTimeLimit(bad), TypeError, String(bad));
  }
  for (const bad of [-2, -0.5, NaN, Infinity, -Infinity]) {
    assert.throws(() => vm.setTimeLimit(bad), RangeError, String(bad));
  }
  assert.equal(vm.getTimeLimit(), 25);
});

test('setTimeLimit / getTimeLimit after dispose throw the disposed error', () => {
  const vm = restore();
  vm.dispose();
  assert.throws(() => vm.setTimeLimit(10), /disposed/);
  assert.throws(() => vm.getTimeLimit(), /disposed/);
});

test('time limit: an endless loop ends with MVM_E_TIME_LIMIT_REACHED at 10, 50 and 500 ms; the VM goes on', () => {
  const vm = restore();
  for (const ms of [10, 50, 500]) {
    vm.setTimeLimit(ms);
    const t0 = process.hrtime.bigint();
    const e = errorOf(() => vm.exports[1]());
    const took = Number(process.hrtime.bigint() - t0) / 1e6;
    assertLimitError(e, TIME_LIMIT);
    assert.equal(e.errno, 100);
    // The engine's words only (this package's own error has none in
    // microvium.h); what it means is in \`detail\`.
    assert.equal(e.message, 'Microvium Error: MVM_E_TIME_LIMIT_REACHED (100)');
    assert.match(e.detail, /setTimeLimit/);
    // Generous: the bench measures the real latency (README).
    assert.ok(took < ms * 2 + 1000, `a ${ms} ms limit stopped the loop after ${took} ms`);
    assert.equal(status(vm), 'live');
    assert.equal(vm.exports[2](1000), sum(1000));
  }
});

test('time limit: the guest cannot catch it', () => {
  const vm = restore();
  vm.setTimeLimit(20);
  assertLimitError(errorOf(() => vm.exports[3]()), TIME_LIMIT);
  assert.equal(vm.exports[2](100), sum(100));
});

test('time limit: it is per outermost call (many short calls, together longer than it, all succeed)', () => {
  const vm = restore({ 1: () => spin(20) });
  vm.setTimeLimit(500);
  for (let i = 0; i < 40; i++) assert.deepEqual(vm.exports[4](i), [undefined, sum(10)]);
});

test('time limit: time spent in host functions counts; off, or changed between calls, it applies to the next call', () => {
  const vm = restore({ 1: (ms) => spin(ms) });
  vm.setTimeLimit(20);
  // The host function overran: the guest stops as soon as it returns.
  assertLimitError(errorOf(() => vm.exports[4](60)), TIME_LIMIT);
  vm.setTimeLimit(-1);
  assert.deepEqual(vm.exports[4](60), [undefined, sum(10)]);
  vm.setTimeLimit(5000);
  assert.deepEqual(vm.exports[4](60), [undefined, sum(10)]);
  vm.setTimeLimit(20);
  assertLimitError(errorOf(() => vm.exports[4](60)), TIME_LIMIT);
  vm.setTimeLimit(-1);
  // With the limit off, an endless loop is stopped by gas only.
  vm.stopAfterNInstructions(200000);
  assert.equal(errorOf(() => vm.exports[1]()).code, 'MVM_E_INSTRUCTION_COUNT_REACHED');
  vm.stopAfterNInstructions(-1);
});

test('time limit: a change made during a call applies from the next outermost call', () => {
  let vm;
  vm = restore({ 1: () => { vm.setTimeLimit(-1); spin(40); } });
  vm.setTimeLimit(20);
  assertLimitError(errorOf(() => vm.exports[4]()), TIME_LIMIT);
  assert.equal(vm.getTimeLimit(), -1);
  assert.deepEqual(vm.exports[4](), [undefined, sum(10)]);
});

test('time limit and gas: the gas setting survives a time-limit stop, and gas exhaustion still reports gas', () => {
  const vm = restore();
  vm.setTimeLimit(20);
  vm.stopAfterNInstructions(2000000000);
  assertLimitError(errorOf(() => vm.exports[1]()), TIME_LIMIT);
  const left = vm.getInstructionCountRemaining();
  assert.ok(left > 0 && left < 2000000000, `gas left: ${left}`);
  // A limit the gas runs out long before.
  vm.setTimeLimit(60000);
  vm.stopAfterNInstructions(100000);
  assert.equal(errorOf(() => vm.exports[1]()).code, 'MVM_E_INSTRUCTION_COUNT_REACHED');
  assert.equal(vm.getInstructionCountRemaining(), 0);
  vm.stopAfterNInstructions(-1);
  assert.equal(vm.exports[2](500), sum(500));
  assert.equal(vm.getInstructionCountRemaining(), -1);
});

test('time limit: a nested call (a host function re-entering the VM) shares the outer deadline; when it is hit there, the outer call fails too', () => {
  for (const hostCatches of [false, true]) {
    let vm;
    let nested;
    vm = restore({
      1: () => {
        nested = errorOf(() => vm.exports[1]());
        if (!hostCatches) throw nested;
        return 'host went on';
      },
    });
    vm.setTimeLimit(30);
    // Export 4 lets the error pass; export 5 would catch what the host
    // throws: neither may go on.
    for (const id of [4, 5]) {
      const t0 = Date.now();
      const outer = errorOf(() => vm.exports[id]());
      assertLimitError(nested, TIME_LIMIT);
      assertLimitError(outer, TIME_LIMIT);
      assert.ok(Date.now() - t0 < 30 * 2 + 1000);
    }
    assert.equal(status(vm), 'live');
    assert.equal(vm.exports[2](300), sum(300));
  }
});

test('time limit: hit inside a host function (which then re-enters the VM): the nested call fails at once, and so does the outer one', () => {
  let vm;
  const seen = [];
  vm = restore({
    1: () => {
      spin(60);
      try {
        return vm.exports[2](10);
      } catch (e) {
        seen.push(e.code);
        throw e;
      }
    },
  });
  vm.setTimeLimit(20);
  assertLimitError(errorOf(() => vm.exports[5]()), TIME_LIMIT);
  assert.deepEqual(seen, [TIME_LIMIT]);
  // Without a limit the same nested call computes what Node computes.
  vm.setTimeLimit(-1);
  assert.deepEqual(vm.exports[4](), [sum(10), sum(10)]);
});

test('time limit: an async guest function whose continuation runs past the limit is stopped; the VM goes on', async () => {
  const vm = restore({ 2: async (x) => { await new Promise((r) => setTimeout(r, 5)); return x; } });
  vm.setTimeLimit(200);
  // A continuation within the limit completes.
  assert.equal(await vm.exports[6](7), 7 + sum(10));
  // One that loops is stopped (the event loop goes on: this test ends).
  const p = vm.exports[6]('loop');
  p.catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(status(vm), 'live');
  assert.equal(vm.exports[2](200), sum(200));
  assert.equal(await vm.exports[6](1), 1 + sum(10));
});

// ---------------------------------------------------------------------------
// opts.interrupt
// ---------------------------------------------------------------------------

function newFlag(length = 1) {
  return new Int32Array(new SharedArrayBuffer(4 * length));
}

test('interrupt: only an Int32Array over a SharedArrayBuffer, of length >= 1, is accepted', () => {
  for (const bad of [1, [0], new Int32Array(1), new Uint32Array(new SharedArrayBuffer(4)), new SharedArrayBuffer(4), {}]) {
    assert.throws(() => restore({}, { interrupt: bad }), TypeError);
  }
  assert.throws(() => restore({}, { interrupt: new Int32Array(new SharedArrayBuffer(0)) }), RangeError);
  restore({}, { interrupt: newFlag() });
  // Element 0 of a view at an offset.
  restore({}, { interrupt: new Int32Array(new SharedArrayBuffer(16), 8, 1) });
});

test('interrupt: a flag set when a call starts stops it at once with MVM_E_INTERRUPTED; the flag is cleared and the next call runs', () => {
  const flag = newFlag(3);
  const vm = restore({}, { interrupt: flag.subarray(1) });
  Atomics.store(flag, 1, 1);
  const e = errorOf(() => vm.exports[2](1000));
  assertLimitError(e, INTERRUPTED);
  assert.equal(e.errno, 101);
  assert.equal(e.message, 'Microvium Error: MVM_E_INTERRUPTED (101)');
  assert.match(e.detail, /opts\.interrupt/);
  assert.deepEqual([...flag], [0, 0, 0]);
  assert.equal(status(vm), 'live');
  assert.equal(vm.exports[2](1000), sum(1000));
});

test('interrupt: a Worker stops the main thread\'s endless loop', async () => {
  // [0] the flag; [1] set by the main thread when it is about to loop.
  const shared = newFlag(2);
  const vm = restore({}, { interrupt: shared });
  // A safety net, so that a broken interrupt fails instead of hanging.
  vm.setTimeLimit(60000);
  const worker = new Worker(`
    const { workerData } = require('node:worker_threads');
    Atomics.wait(workerData, 1, 0);
    Atomics.wait(workerData, 1, 1, 50); // let the loop start
    Atomics.store(workerData, 0, 1);
  `, { eval: true, workerData: shared });
  await new Promise((resolve) => worker.once('online', resolve));
  Atomics.store(shared, 1, 1);
  Atomics.notify(shared, 1);
  const e = errorOf(() => vm.exports[1]());
  assertLimitError(e, INTERRUPTED);
  assert.equal(Atomics.load(shared, 0), 0);
  await new Promise((resolve) => worker.once('exit', resolve));
  assert.equal(vm.exports[2](300), sum(300));
});

test('interrupt: raised in a nested call, it fails the outer call too, even if the host catches it', () => {
  const flag = newFlag();
  let vm;
  let nested;
  vm = restore({
    1: () => {
      Atomics.store(flag, 0, 1);
      nested = errorOf(() => vm.exports[1]());
      return 'host went on';
    },
  }, { interrupt: flag });
  assertLimitError(errorOf(() => vm.exports[5]()), INTERRUPTED);
  assertLimitError(nested, INTERRUPTED);
  assert.equal(flag[0], 0);
  assert.equal(vm.exports[2](50), sum(50));
});

test('interrupt and time limit together: each reports its own error', () => {
  const flag = newFlag();
  const vm = restore({}, { interrupt: flag });
  vm.setTimeLimit(20);
  assertLimitError(errorOf(() => vm.exports[1]()), TIME_LIMIT);
  Atomics.store(flag, 0, 1);
  assertLimitError(errorOf(() => vm.exports[1]()), INTERRUPTED);
  assertLimitError(errorOf(() => vm.exports[1]()), TIME_LIMIT);
});

// ---------------------------------------------------------------------------
// opts.maxHeapSize
// ---------------------------------------------------------------------------

test('maxHeapSize: a guest that allocates past an 8 kB cap dies with MVM_E_OUT_OF_MEMORY; another VM of the same snapshot does not', () => {
  const capped = restore({}, { maxHeapSize: 8192 });
  const other = restore();
  const e = errorOf(() => capped.exports[7]());
  assert.ok(e instanceof MicroviumError);
  assert.equal(e.code, 'MVM_E_OUT_OF_MEMORY');
  assert.equal(status(capped), 'poisoned');
  assert.ok(errorOf(() => capped.exports[2](1)) instanceof MicroviumError);
  // 1,500 live two-item arrays (about 15 kB of guest heap): fine uncapped.
  assert.equal(other.exports[8](1500), 1500);
  assert.equal(status(other), 'live');
  assert.ok(other.getMemoryStats().virtualHeapUsed > 8192);
});

test('maxHeapSize: the cap holds the heap below it, and garbage is collected within it', () => {
  const vm = restore({}, { maxHeapSize: 8192 });
  // Much more than 8 kB allocated in all, little of it live at once.
  assert.equal(vm.exports[9](5000), 4999);
  assert.equal(vm.exports[8](200), 200);
  const stats = vm.getMemoryStats();
  assert.equal(stats.maxHeapSize, 8192);
  assert.ok(stats.virtualHeapHighWaterMark <= 8192, JSON.stringify(stats));
  assert.ok(stats.virtualHeapAllocatedCapacity <= 8192, JSON.stringify(stats));
  assert.equal(status(vm), 'live');
});

test('maxHeapSize: values the host drops are released within the cap, as within the engine\'s 64 kB', () => {
  // Each call hands the host a new guest array, which stays rooted until V8
  // collects its host value: the host's relief of heap pressure must act
  // below this VM's cap, not at its mark for a 64 kB heap.
  const vm = restore({}, { maxHeapSize: 8192 });
  let last;
  for (let i = 0; i < 5000; i++) last = vm.exports[10](i);
  assert.deepEqual([...last], [4999, [4999]]);
  assert.equal(status(vm), 'live');
  assert.ok(vm.getMemoryStats().virtualHeapHighWaterMark <= 8192);
});

test('maxHeapSize: values a guest loop hands to a host function that drops them are released within the cap', () => {
  // The same, from inside one guest call: the relief runs after each
  // crossing, and must see the heap grow even while no call ends.
  const source = `
    const sink = vmImport(1);
    vmExport(1, (n) => {
      let last = 0;
      for (let i = 0; i < n; i++) last = sink([i, [i, i]]);
      return last;
    });`;
  // Small caps too: the host values it must hold before forcing another
  // collection scale with the cap (unscaled, 8 kB ran out of memory).
  for (const maxHeapSize of [4096, 8192, 12288, undefined]) {
    let seen = 0;
    const vm = Microvium.restore(compile(source), { 1: (a) => { seen++; return a[0]; } }, maxHeapSize ? { maxHeapSize } : {});
    const f = vm.exports[1];
    assert.equal(f(20000), 19999);
    assert.equal(seen, 20000);
    assert.equal(status(vm), 'live');
    assert.ok(vm.getMemoryStats().virtualHeapHighWaterMark <= (maxHeapSize || 65534));
  }
});

test('maxHeapSize: getMemoryStats reports the cap (the engine\'s 65534 bytes when none is set)', () => {
  assert.equal(restore().getMemoryStats().maxHeapSize, 65534);
  assert.equal(restore({}, { maxHeapSize: 4096 }).getMemoryStats().maxHeapSize, 4096);
  // 64 kB is the engine's whole heap, which is 65534 bytes.
  assert.equal(restore({}, { maxHeapSize: 65536 }).getMemoryStats().maxHeapSize, 65534);
  // Odd sizes are rounded down: allocations are 2-byte aligned.
  assert.equal(restore({}, { maxHeapSize: 5001 }).getMemoryStats().maxHeapSize, 5000);
});

test('maxHeapSize: out of range is a RangeError at restore (not an integer, below the snapshot\'s heap, above 64 kB)', () => {
  for (const bad of [1.5, 0, -8192, 65537, 1e6, NaN, Infinity]) {
    assert.throws(() => restore({}, { maxHeapSize: bad }), RangeError, String(bad));
  }
  for (const bad of ['8192', null, {}]) {
    assert.throws(() => restore({}, { maxHeapSize: bad }), TypeError, String(bad));
  }
  // A snapshot whose heap starts at about 2 kB: a 1 kB cap cannot hold it.
  const big = compile(`const data = []; for (let i = 0; i < 500; i++) data.push([i]); vmExport(1, () => data.length);`);
  const needed = Microvium.restore(big, {}).getMemoryStats().virtualHeapUsed;
  assert.ok(needed > 1024, `the snapshot's heap is ${needed} bytes`);
  const e = errorOf(() => Microvium.restore(big, {}, { maxHeapSize: 1024 }));
  assert.ok(e instanceof RangeError && /heap/.test(e.message), String(e));
  const vm = Microvium.restore(big, {}, { maxHeapSize: needed + 2048 });
  assert.equal(vm.exports[1](), 500);
});
