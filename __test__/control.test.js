'use strict';
// VM control: snapshots and versions, the gas counter,
// breakpoints and currentAddress, memory statistics and the guest GC.

const test = require('node:test');
const assert = require('node:assert/strict');
const mv = require('microvium/dist/lib');
const Microvium = require('..');
const { compile } = require('./helpers');

const { MicroviumError } = Microvium;
const status = (vm) => Microvium.__internals.status(vm);

/** The instructions of a snapshot, from the compiler's disassembly. */
function instructions(bytes) {
  const { disassembly } = mv.Microvium.decodeSnapshot({ data: Buffer.from(bytes) });
  const result = [];
  for (const line of disassembly.split('\n')) {
    const m = /^([0-9a-f]{4})\s+(\d+)\s+(\S.*)$/.exec(line);
    if (m) result.push({ addr: parseInt(m[1], 16), size: Number(m[2]), text: m[3].trim() });
  }
  return result;
}

/** The first instruction matching `re` at or after the first matching `after`. */
function findInstruction(bytes, re, after) {
  const ins = instructions(bytes);
  let start = 0;
  if (after) {
    start = ins.findIndex((i) => after.test(i.text));
    assert.ok(start >= 0, `no instruction matching ${after}`);
  }
  const found = ins.slice(start).find((i) => re.test(i.text));
  assert.ok(found, `no instruction matching ${re}`);
  return found;
}

const isGasError = (e) =>
  e instanceof MicroviumError && e.code === 'MVM_E_INSTRUCTION_COUNT_REACHED' && e.errno === 51 &&
  e.message === 'Microvium Error: MVM_E_INSTRUCTION_COUNT_REACHED (51): The instruction count set by `mvm_stopAfterNInstructions` has been reached';

// ---------------------------------------------------------------------------
// 1. Snapshots and versions
// ---------------------------------------------------------------------------

const COUNTER = `
  const log = vmImport(1);
  let count = 0;
  let obj = { label: 'start', items: [1, 2, 3] };
  vmExport(1, () => { count = count + 1; return count; });
  vmExport(2, () => obj);
  vmExport(3, () => { log(count); return count; });
`;

test('createSnapshot returns a Uint8Array that restore accepts and continues the counter', () => {
  const vm = Microvium.restore(compile(COUNTER), { 1: () => {} });
  assert.equal(vm.exports[1](), 1);
  assert.equal(vm.exports[1](), 2);
  assert.equal(vm.exports[1](), 3);
  const snap = vm.createSnapshot();
  assert.ok(snap instanceof Uint8Array);
  assert.ok(snap.length > 28, 'a snapshot has at least a header');

  const vm2 = Microvium.restore(snap, { 1: () => {} });
  assert.equal(vm2.exports[1](), 4);
  assert.equal(vm2.exports[1](), 5);
  // The original goes on independently.
  assert.equal(vm.exports[1](), 4);
  // A snapshot of the restored VM continues again (and other byte forms work).
  const snap2 = vm2.createSnapshot();
  assert.equal(Microvium.restore(Buffer.from(snap2), { 1: () => {} }).exports[1](), 6);
  assert.equal(Microvium.restore(snap2.slice().buffer, { 1: () => {} }).exports[1](), 6);
  assert.equal(Microvium.restore(Array.from(snap2), { 1: () => {} }).exports[1](), 6);
});

test('createSnapshot captures object state written from the host and needs the imports again', () => {
  const vm = Microvium.restore(compile(COUNTER), { 1: () => {} });
  const o = vm.exports[2]();
  o.label = 'changed by host';
  o.items[1] = 20;
  o.extra = { deep: true };
  vm.runGC(true);
  const snap = vm.createSnapshot();
  const vm2 = Microvium.restore(snap, { 1: () => {} });
  const o2 = vm2.exports[2]();
  assert.equal(o2.label, 'changed by host');
  assert.deepEqual([...o2.items], [1, 20, 3]);
  assert.equal(o2.extra.deep, true);
  assert.notEqual(o2, o, 'a different VM gives different host values');
  // The snapshot still imports id 1.
  assert.throws(() => Microvium.restore(snap, {}), /\b1\b/);
  const seen = [];
  const vm3 = Microvium.restore(snap, { 1: (c) => seen.push(c) });
  vm3.exports[1]();
  assert.equal(vm3.exports[3](), 1);
  assert.deepEqual(seen, [1]);
});

test('createSnapshot inside a host call gives a snapshot that restores', () => {
  const src = `
    const h = vmImport(1);
    let n = 0;
    vmExport(1, () => { n = n + 1; h(); n = n + 10; return n; });
    vmExport(2, () => n);
  `;
  let vm;
  let snap;
  vm = Microvium.restore(compile(src), { 1: () => { snap = vm.createSnapshot(); } });
  assert.equal(vm.exports[1](), 11);
  assert.ok(snap instanceof Uint8Array);
  const vm2 = Microvium.restore(snap, { 1: () => {} });
  assert.equal(vm2.exports[2](), 1, 'the snapshot holds the state at the time it was taken');
  assert.equal(vm2.exports[1](), 12);
});

test('engineVersion and requiredEngineVersion are version strings', () => {
  const vm = Microvium.restore(compile(COUNTER), { 1: () => {} });
  assert.equal(Microvium.engineVersion, '8.0.0');
  assert.equal(vm.engineVersion, '8.0.0');
  assert.equal(typeof vm.requiredEngineVersion, 'string');
  assert.match(vm.requiredEngineVersion, /^\d+\.\d+\.\d+$/);
  assert.equal(vm.requiredEngineVersion, '8.0.0');
  const vm2 = Microvium.restore(vm.createSnapshot(), { 1: () => {} });
  assert.equal(vm2.requiredEngineVersion, '8.0.0');
});

// ---------------------------------------------------------------------------
// 2. Gas counter
// ---------------------------------------------------------------------------

const LOOPS = `
  const callHost = vmImport(1);
  let n = 0;
  vmExport(1, () => { while (true) { n = n + 1; } });
  vmExport(2, () => { n = n + 1; return n; });
  vmExport(3, () => { try { return callHost(); } catch (e) { return 'caught'; } });
  vmExport(4, () => { const r = callHost(); n = n + 1000; return r; });
  vmExport(5, () => n);
`;

test('gas: disabled by default, counts down, and stops an infinite loop', () => {
  const vm = Microvium.restore(compile(LOOPS), { 1: () => 0 });
  assert.equal(vm.getInstructionCountRemaining(), -1);
  vm.stopAfterNInstructions(1000);
  assert.equal(vm.getInstructionCountRemaining(), 1000);
  assert.equal(vm.exports[2](), 1);
  const r1 = vm.getInstructionCountRemaining();
  assert.ok(r1 < 1000 && r1 > 900, `remaining after a short call: ${r1}`);
  vm.exports[2]();
  const r2 = vm.getInstructionCountRemaining();
  assert.ok(r2 < r1, `remaining keeps decreasing: ${r1} -> ${r2}`);

  assert.throws(() => vm.exports[1](), isGasError);
  assert.equal(vm.getInstructionCountRemaining(), 0);
  assert.equal(status(vm), 'live');
  // Still out of gas: every call fails the same way, nothing runs.
  assert.throws(() => vm.exports[2](), isGasError);

  // Disabling the counter makes the VM usable again; the loop did run.
  vm.stopAfterNInstructions(-1);
  assert.equal(vm.getInstructionCountRemaining(), -1);
  const n = vm.exports[5]();
  assert.ok(n > 50, `the loop ran until the gas ran out (n = ${n})`);
  assert.equal(vm.exports[2](), n + 1);

  // Resetting the counter also works, and it can stop the loop again.
  vm.stopAfterNInstructions(500);
  assert.equal(vm.exports[2](), n + 2);
  assert.throws(() => vm.exports[1](), isGasError);
  vm.stopAfterNInstructions(100);
  assert.ok(vm.exports[2]() > n + 2);
  vm.stopAfterNInstructions(-1);
  assert.equal(status(vm), 'live');
});

test('gas: stopAfterNInstructions(0) fails the next call before it changes anything', () => {
  const vm = Microvium.restore(compile(LOOPS), { 1: () => 0 });
  vm.stopAfterNInstructions(0);
  assert.equal(vm.getInstructionCountRemaining(), 0);
  assert.throws(() => vm.exports[2](), isGasError);
  vm.stopAfterNInstructions(-1);
  assert.equal(vm.exports[5](), 0);
  assert.throws(() => vm.stopAfterNInstructions(1.5), TypeError);
  assert.throws(() => vm.stopAfterNInstructions('10'), TypeError);
});

test('gas: stops a runaway loop inside a nested (re-entrant) call', () => {
  let vm;
  let hostSaw;
  // The import is a host function that calls another export, which loops.
  vm = Microvium.restore(compile(LOOPS), {
    1: () => {
      try {
        return vm.exports[1]();
      } catch (e) {
        hostSaw = e;
        throw e;
      }
    },
  });
  vm.stopAfterNInstructions(5000);
  // Export 4: uncaught in the guest, the error reaches the host caller.
  assert.throws(() => vm.exports[4](), isGasError);
  assert.ok(isGasError(hostSaw), 'the nested call failed with the gas error');
  // Export 3 has a try/catch, but there is no gas left to run it.
  hostSaw = undefined;
  vm.stopAfterNInstructions(5000);
  assert.throws(() => vm.exports[3](), isGasError);
  assert.ok(isGasError(hostSaw));
  assert.equal(status(vm), 'live');
  vm.stopAfterNInstructions(-1);
  const n = vm.exports[5]();
  assert.ok(n > 100, `the nested loop ran (n = ${n})`);
  assert.equal(vm.exports[2](), n + 1, 'usable after the counter is disabled');
});

test('gas: a host function can meter only the nested call and let the outer call finish', () => {
  let vm;
  vm = Microvium.restore(compile(LOOPS), {
    1: () => {
      vm.stopAfterNInstructions(2000);
      try {
        vm.exports[1]();
        return 'no error';
      } catch (e) {
        return isGasError(e) ? 'stopped' : `wrong error: ${e && e.message}`;
      } finally {
        vm.stopAfterNInstructions(-1);
      }
    },
  });
  const before = vm.exports[5]();
  assert.equal(vm.exports[4](), 'stopped');
  const after = vm.exports[5]();
  assert.ok(after > before + 1000, 'the outer call went on (n + 1000) after the nested loop was stopped');
  assert.equal(vm.getInstructionCountRemaining(), -1);
});

// ---------------------------------------------------------------------------
// 3. Breakpoints and currentAddress
// ---------------------------------------------------------------------------

const MARKS = `
  const mark = vmImport(1);
  let count = 0;
  vmExport(1, () => { count = count + 1; return count; });
  vmExport(2, () => { mark(10); count = count + 100; mark(20); return count; });
  vmExport(3, () => count);
`;

function markCalls(bytes) {
  return {
    call1: findInstruction(bytes, /^Call\(/, /^Literal\((lit )?10\)$/),
    call2: findInstruction(bytes, /^Call\(/, /^Literal\((lit )?20\)$/),
  };
}

test('breakpoint fires at its address, before the instruction runs', () => {
  const bytes = compile(MARKS);
  const { call1, call2 } = markCalls(bytes);
  const log = [];
  let vm;
  vm = Microvium.restore(bytes, { 1: (x) => { log.push(['mark', x]); } }, {
    breakpointHit(address) {
      // Side effects before the breakpoint are visible; the call at it has
      // not happened yet. The guest can be called re-entrantly from here.
      log.push(['bp', address, vm.currentAddress, vm.exports[3]()]);
    },
  });
  vm.setBreakpoint(call2.addr);
  assert.equal(vm.exports[2](), 100);
  assert.deepEqual(log, [['mark', 10], ['bp', call2.addr, call2.addr, 100], ['mark', 20]]);

  // Two breakpoints.
  log.length = 0;
  vm.setBreakpoint(call1.addr);
  assert.equal(vm.exports[2](), 200);
  assert.deepEqual(log, [['bp', call1.addr, call1.addr, 100], ['mark', 10], ['bp', call2.addr, call2.addr, 200], ['mark', 20]]);

  // Removing them.
  log.length = 0;
  vm.removeBreakpoint(call2.addr);
  assert.equal(vm.exports[2](), 300);
  assert.deepEqual(log, [['bp', call1.addr, call1.addr, 200], ['mark', 10], ['mark', 20]]);
  log.length = 0;
  vm.removeBreakpoint(call1.addr);
  assert.equal(vm.exports[2](), 400);
  assert.deepEqual(log, [['mark', 10], ['mark', 20]]);
});

test('breakpoint in a loop fires every iteration; none fire when unset or elsewhere', () => {
  const src = `
    let total = 0;
    vmExport(1, (n) => { let i = 0; while (i < n) { total = total + i; i = i + 1; } return total; });
  `;
  const bytes = compile(src);
  const store = findInstruction(bytes, /^StoreGlobal/);
  const hits = [];
  const vm = Microvium.restore(bytes, {}, { breakpointHit: (a) => hits.push(a) });
  assert.equal(vm.exports[1](5), 10);
  assert.deepEqual(hits, []);
  vm.setBreakpoint(store.addr);
  assert.equal(vm.exports[1](5), 20);
  assert.deepEqual(hits, [store.addr, store.addr, store.addr, store.addr, store.addr]);
  vm.removeBreakpoint(store.addr);
  assert.equal(vm.exports[1](5), 30);
  assert.equal(hits.length, 5);
  // A VM without breakpointHit runs through a breakpoint.
  const vm2 = Microvium.restore(bytes);
  vm2.setBreakpoint(store.addr);
  assert.equal(vm2.exports[1](3), 3);
});

test('currentAddress inside a host call is the address of that call', () => {
  const bytes = compile(MARKS);
  const { call1, call2 } = markCalls(bytes);
  const seen = {};
  let vm;
  vm = Microvium.restore(bytes, { 1: (x) => { seen[x] = vm.currentAddress; } });
  vm.exports[2]();
  for (const [x, call] of [[10, call1], [20, call2]]) {
    assert.equal(typeof seen[x], 'number');
    // The engine reports the program counter, which may already be past the
    // Call instruction.
    assert.ok(seen[x] === call.addr || seen[x] === call.addr + call.size,
      `mark(${x}): currentAddress ${seen[x]}, Call at ${call.addr} (+${call.size})`);
  }
  assert.notEqual(seen[10], seen[20]);
});

test('a breakpoint callback that throws: the error reaches the host caller; the VM stays usable', () => {
  const bytes = compile(MARKS);
  const { call2 } = markCalls(bytes);
  const thrown = new RangeError('from breakpoint');
  let throwIt = true;
  const marks = [];
  const vm = Microvium.restore(bytes, { 1: (x) => { marks.push(x); } }, {
    breakpointHit() { if (throwIt) throw thrown; },
  });
  vm.setBreakpoint(call2.addr);
  assert.throws(() => vm.exports[2](), (e) => e === thrown);
  assert.equal(status(vm), 'live');
  assert.equal(vm.exports[3](), 100, 'effects before the breakpoint happened');
  // With gas set, the counter is left as the user set it (minus what ran).
  vm.stopAfterNInstructions(1000);
  assert.throws(() => vm.exports[2](), (e) => e === thrown);
  const rem = vm.getInstructionCountRemaining();
  assert.ok(rem > 0 && rem < 1000, `gas remaining: ${rem}`);
  vm.stopAfterNInstructions(-1);
  throwIt = false;
  assert.equal(vm.exports[2](), 300);
  vm.removeBreakpoint(call2.addr);
  assert.equal(vm.exports[1](), 301);
});

test('a breakpoint callback that throws: the guest cannot catch it and does not go on', () => {
  const src = `
    const mark = vmImport(1);
    let count = 0;
    vmExport(1, () => {
      count = count + 1;
      try { mark(1); } catch (e) { return 'swallowed'; }
      count = count + 1;
      return count;
    });
    vmExport(2, () => count);
  `;
  const bytes = compile(src);
  const call = findInstruction(bytes, /^Call\(/);
  const marks = [];
  const thrown = new Error('stop here');
  const vm = Microvium.restore(bytes, { 1: (x) => { marks.push(x); } }, {
    breakpointHit() { throw thrown; },
  });
  vm.setBreakpoint(call.addr);
  assert.throws(() => vm.exports[1](), (e) => e === thrown);
  assert.equal(vm.exports[2](), 1, 'nothing after the breakpoint ran');
  // The instruction at the breakpoint is the call to the import: since the
  // breakpoint callback threw before it, the import must not be called.
  assert.deepEqual(marks, [], 'the import at the breakpoint was called after the breakpoint callback threw');
});

test('setBreakpoint/removeBreakpoint check their argument', () => {
  const vm = Microvium.restore(compile(MARKS), { 1: () => {} });
  assert.throws(() => vm.setBreakpoint('12'), TypeError);
  assert.throws(() => vm.removeBreakpoint(undefined), TypeError);
  assert.throws(() => vm.setBreakpoint(-1));
  assert.throws(() => vm.setBreakpoint(0x10000));
  // Removing a breakpoint that is not set is harmless.
  vm.removeBreakpoint(0x40);
  assert.equal(vm.exports[1](), 1);
});

// ---------------------------------------------------------------------------
// 4. Memory statistics and the guest GC
// ---------------------------------------------------------------------------

const STATS_FIELDS = [
  'totalSize', 'fragmentCount', 'coreSize', 'importTableSize', 'globalVariablesSize',
  'registersSize', 'stackHeight', 'stackAllocatedCapacity', 'stackHighWaterMark',
  'virtualHeapUsed', 'virtualHeapHighWaterMark', 'virtualHeapAllocatedCapacity',
];

function checkStats(s) {
  // Exactly mvm_TsMemoryStats's fields are listed (as the WebAssembly
  // runtime's); this VM's heap cap (opts.maxHeapSize) is there but not
  // enumerable (sandbox-limits.test.js).
  assert.deepEqual(Object.keys(s).sort(), [...STATS_FIELDS].sort());
  assert.equal(typeof s.maxHeapSize, 'number');
  for (const f of STATS_FIELDS) {
    assert.equal(typeof s[f], 'number', f);
    assert.ok(Number.isSafeInteger(s[f]) && s[f] >= 0 && s[f] < 1 << 20, `${f} = ${s[f]}`);
  }
  assert.ok(s.virtualHeapAllocatedCapacity >= s.virtualHeapUsed,
    `capacity ${s.virtualHeapAllocatedCapacity} >= used ${s.virtualHeapUsed}`);
  assert.ok(s.virtualHeapHighWaterMark >= s.virtualHeapUsed);
  assert.ok(s.totalSize >= s.coreSize + s.virtualHeapAllocatedCapacity);
}

const ALLOC = `
  const h = vmImport(1);
  let keep = undefined;
  vmExport(1, (n) => { const a = []; let i = 0; while (i < n) { a[i] = { i: i, s: [i, i] }; i = i + 1; } keep = a; return n; });
  vmExport(2, () => { keep = undefined; });
  vmExport(3, (n) => { let i = 0; while (i < n) { const t = [i, i, i]; i = i + 1; } });
  vmExport(4, () => { const t = [1, 2]; h(); return t[0]; });
`;

test('getMemoryStats: every mvm_TsMemoryStats field is a number', () => {
  const vm = Microvium.restore(compile(ALLOC), { 1: () => {} });
  const s = vm.getMemoryStats();
  checkStats(s);
  assert.ok(s.coreSize > 0);
  assert.equal(s.stackHeight, 0, 'not running');
});

test('getMemoryStats: grows when the guest allocates, shrinks after runGC()', () => {
  const vm = Microvium.restore(compile(ALLOC), { 1: () => {} });
  const s0 = vm.getMemoryStats();
  vm.exports[1](300);
  const s1 = vm.getMemoryStats();
  checkStats(s1);
  assert.ok(s1.virtualHeapUsed > s0.virtualHeapUsed + 3000, `${s0.virtualHeapUsed} -> ${s1.virtualHeapUsed}`);
  assert.ok(s1.totalSize > s0.totalSize);
  assert.ok(s1.virtualHeapHighWaterMark >= s1.virtualHeapUsed);

  vm.exports[2]();
  vm.runGC();
  const s2 = vm.getMemoryStats();
  checkStats(s2);
  assert.ok(s2.virtualHeapUsed < s1.virtualHeapUsed / 4, `after GC: ${s1.virtualHeapUsed} -> ${s2.virtualHeapUsed}`);
  assert.ok(s2.totalSize < s1.totalSize);
  assert.equal(s2.virtualHeapHighWaterMark, s1.virtualHeapHighWaterMark, 'high-water mark is kept');

  // Garbage only (nothing kept): runGC() reclaims it.
  vm.exports[3](200);
  const s3 = vm.getMemoryStats();
  assert.ok(s3.virtualHeapUsed > s2.virtualHeapUsed + 1000);
  vm.runGC();
  assert.ok(vm.getMemoryStats().virtualHeapUsed <= s2.virtualHeapUsed);
});

test('runGC(true) squeezes the heap to what is used', () => {
  const vm = Microvium.restore(compile(ALLOC), { 1: () => {} });
  vm.exports[1](100);
  vm.exports[3](300);
  vm.runGC(false);
  const plain = vm.getMemoryStats();
  vm.exports[3](300);
  vm.runGC(true);
  const squeezed = vm.getMemoryStats();
  checkStats(squeezed);
  assert.equal(squeezed.virtualHeapUsed, plain.virtualHeapUsed, 'the same live data');
  assert.equal(squeezed.virtualHeapAllocatedCapacity, squeezed.virtualHeapUsed);
  assert.ok(squeezed.virtualHeapAllocatedCapacity < plain.virtualHeapAllocatedCapacity);
  assert.ok(squeezed.totalSize < plain.totalSize);
  assert.equal(vm.exports[1](5), 5, 'usable after squeezing');
  assert.throws(() => vm.runGC(1), TypeError);
});

test('getMemoryStats inside a host call reports the running stack', () => {
  let vm;
  let inside;
  vm = Microvium.restore(compile(ALLOC), { 1: () => { inside = vm.getMemoryStats(); } });
  assert.equal(vm.exports[4](), 1);
  checkStats(inside);
  assert.ok(inside.stackHeight > 0);
  assert.ok(inside.stackAllocatedCapacity > 0);
  assert.ok(inside.registersSize > 0);
});

test('runGC inside a host call keeps the running guest intact', () => {
  let vm;
  vm = Microvium.restore(compile(ALLOC), { 1: () => { vm.runGC(); vm.runGC(true); } });
  vm.exports[1](50);
  assert.equal(vm.exports[4](), 1);
  assert.equal(vm.exports[1](5), 5);
});

test('getMemoryStats gives sane figures for every VM (no wrapped-around sizes)', () => {
  // The figures must not depend on where the host allocator put the buckets.
  const bytes = compile(ALLOC);
  const bad = [];
  for (let i = 0; i < 300; i++) {
    const vm = Microvium.restore(bytes, { 1: () => {} });
    vm.exports[1](i % 40);
    const s = vm.getMemoryStats();
    if (STATS_FIELDS.some((f) => !Number.isSafeInteger(s[f]) || s[f] < 0 || s[f] > 1 << 20)) bad.push(s);
    vm.dispose();
  }
  assert.equal(bad.length, 0, `${bad.length}/300 VMs gave impossible stats, e.g. ${JSON.stringify(bad[0])}`);
});
