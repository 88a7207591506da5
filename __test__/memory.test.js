'use strict';
// Memory of long-lived VMs (issue "Long-lived VMs"):
// - the library changes nothing in the host process (no V8 flag, no global
//   `gc` in the program, its vm contexts or its Workers), yet a loop that
//   drops many returned values runs in bounded memory;
// - native memory per returned value does not wait for the event loop;
// - vm.release(value) and vm.scope(fn) release guest values at once;
// - opts.gc chooses how the VM gets a JavaScript collection;
// - each VM reports its native memory to V8.
//
// Run: node --expose-gc --test __test__/memory.test.js (the child processes
// run without --expose-gc unless a test says otherwise).

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, runIsolated, gc } = require('./helpers');

const MB = 1024 * 1024;

/** Runs `code` in a child process (no --expose-gc) and returns what it printed as JSON. */
function child(code, { args = [], timeout = 180000 } = {}) {
  const r = runIsolated(code, { args, timeout });
  assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const FRESH = `
  vmExport(1, (i) => ({ i: i, list: [i], s: 'fresh' }));
  vmExport(2, (i) => () => i);
  vmExport(3, (i) => { const u = Microvium.newUint8Array(8); u[0] = i % 256; return u; });
`;

describe('the host process is left as it was', () => {
  test('no V8 flag set, no global gc in the program, new vm contexts or new Workers, after heap pressure', () => {
    const out = child(`
      const v8 = require('node:v8');
      const nodeVm = require('node:vm');
      const { Worker } = require('node:worker_threads');
      const flags = [];
      const setFlags = v8.setFlagsFromString;
      v8.setFlagsFromString = function (f) { flags.push(String(f)); return setFlags.apply(this, arguments); };
      const before = { main: typeof gc, context: nodeVm.runInNewContext('typeof gc'), execArgv: process.execArgv.slice() };

      // Heap pressure: many more dropped values than the guest heap holds.
      const vm = Microvium.restore(compile(${JSON.stringify(FRESH)}), {});
      for (let i = 0; i < 20000; i++) vm.exports[1](i);
      for (let i = 0; i < 20000; i++) vm.exports[2](i);
      assert.equal(vm.exports[1](7).list[0], 7);

      const worker = new Worker("require('node:worker_threads').parentPort.postMessage(typeof gc)", { eval: true });
      worker.once('message', (inWorker) => {
        console.log(JSON.stringify({
          before,
          after: {
            main: typeof gc,
            context: nodeVm.runInNewContext('typeof gc'),
            createdContext: nodeVm.runInContext('typeof gc', nodeVm.createContext({})),
            worker: inWorker,
            execArgv: process.execArgv,
          },
          flags,
        }));
        worker.terminate();
      });
    `);
    assert.ok(!out.before.execArgv.includes('--expose-gc'), 'the child runs without --expose-gc');
    assert.deepEqual(out.after, {
      main: 'undefined', context: 'undefined', createdContext: 'undefined', worker: 'undefined', execArgv: out.before.execArgv,
    });
    assert.deepEqual(out.before, { main: 'undefined', context: 'undefined', execArgv: out.before.execArgv });
    assert.deepEqual(out.flags, [], 'the library set V8 flags');
  });
});

describe('a synchronous loop that drops returned values runs in bounded memory', () => {
  // Each child: warm up, then 200,000 more calls in one synchronous loop (the
  // event loop never turns), every result dropped. Native memory (RSS less
  // V8's heap, which may grow its young generation once in such a loop)
  // after the warm-up and at the end: memory that waited for the event loop
  // would show up here as ~32 MB (objects) to ~66 MB (functions).
  const loop = (exportId, { release = false, scope = false, gc = false } = {}) => `
    const v8 = require('node:v8');
    const native = () => process.memoryUsage().rss - v8.getHeapStatistics().total_physical_size;
    const vm = Microvium.restore(compile(${JSON.stringify(FRESH)}), {}, ${gc ? '{ gc: global.gc }' : '{}'});
    const f = vm.exports[${exportId}];
    const one = ${release ? '(i) => vm.release(f(i))' : scope ? '(i) => vm.scope(() => { f(i); })' : '(i) => f(i)'};
    for (let i = 0; i < 30000; i++) one(i);
    const early = native();
    for (let i = 0; i < 200000; i++) one(i);
    const late = native();
    const r = f(123);
    const check = typeof r === 'function' ? r() : r.i !== undefined ? r.i : [...r][0];
    console.log(JSON.stringify({ growth: late - early, check, live: Microvium.__internals.liveHandles(vm) }));
  `;
  const BOUND = 16 * MB;
  for (const [name, id] of [['objects', 1], ['functions', 2], ['Uint8Arrays', 3]]) {
    test(`dropped ${name}: native memory stays flat without --expose-gc and without the event loop`, () => {
      const { growth, check } = child(loop(id));
      assert.equal(check, 123);
      assert.ok(growth < BOUND, `native memory grew ${(growth / MB).toFixed(1)} MB over 200,000 calls`);
    });
  }

  test('released objects and functions (vm.release, vm.scope): native memory stays flat and no handle is left', () => {
    for (const [id, opts] of [[1, { release: true }], [2, { release: true }], [1, { scope: true }], [2, { scope: true }]]) {
      const { growth, check, live } = child(loop(id, opts));
      assert.equal(check, 123);
      assert.ok(growth < BOUND, `export ${id} ${JSON.stringify(opts)}: native memory grew ${(growth / MB).toFixed(1)} MB`);
      assert.ok(live <= 4, `export ${id} ${JSON.stringify(opts)}: ${live} live handles`);
    }
  });

  test('after a phase of nearly full live data, a loop that drops values still runs', () => {
    const out = child(`
      const vm = Microvium.restore(compile(\`
        let ballast = undefined;
        vmExport(1, (n) => { let i = 0; while (i < n) { ballast = { i: i, next: ballast }; i++; } return n; });
        vmExport(2, () => { ballast = undefined; });
        vmExport(3, (i) => ({ i: i, list: [i], s: 'fresh' }));
      \`), {});
      vm.exports[1](4300); // about 60 kB of live data
      vm.exports[3](0);
      vm.exports[2]();     // gone again
      let i = 0;
      for (; i < 50000; i++) vm.exports[3](i);
      console.log(JSON.stringify({ i, last: vm.exports[3](5).i }));
    `, { args: ['--expose-gc'] });
    assert.deepEqual(out, { i: 50000, last: 5 });
  });

  test('with the program\'s own gc (started with --expose-gc) passed as opts.gc: native memory stays flat', () => {
    const { growth, check } = child(loop(2, { gc: true }), { args: ['--expose-gc'] });
    assert.equal(check, 123);
    assert.ok(growth < BOUND, `native memory grew ${(growth / MB).toFixed(1)} MB over 200,000 calls`);
  });
});

// ---------------------------------------------------------------------------

const SRC = `
  let kept = { name: 'kept', list: [1, 2] };
  class K { constructor(x) { this.x = x; } get2() { return this.x * 2; } }
  vmExport(1, (i) => ({ i: i, inner: { s: 'in' + i }, list: [i, i + 1] }));
  vmExport(2, (i) => (j) => i + j);
  vmExport(3, K);
  vmExport(4, () => kept);
  vmExport(5, (o) => o.i);
  vmExport(6, (n) => Microvium.newUint8Array(n));
  vmExport(7, (i) => { throw { message: 'thrown' + i }; });
  vmExport(8, async (x) => x + 1);
`;

const RELEASED = /released/;

describe('vm.release(value)', () => {
  test('every use of a released value throws a clear error; other values go on', () => {
    const vm = Microvium.restore(compile(SRC), {});
    const o = vm.exports[1](1);
    const other = vm.exports[1](2);
    const f = vm.exports[2](10);
    const K = vm.exports[3];
    const k = new K(4);
    const u = vm.exports[6](4);
    const list = o.list;
    vm.release(o, f, k, u, list);
    const uses = {
      'read a property': () => o.i,
      'write a property': () => { o.i = 2; },
      'Object.keys': () => Object.keys(o),
      'in': () => 'i' in o,
      'array length': () => list.length,
      'array index': () => list[0],
      'call a function': () => f(1),
      'call a method': () => k.get2(),
      'Uint8Array length': () => u.length,
      'Uint8Array slice': () => u.slice(),
    };
    for (const [name, use] of Object.entries(uses)) {
      assert.throws(use, (e) => e instanceof Error && RELEASED.test(e.message), name);
    }
    // Passing it back into the VM: a TypeError, and the guest is not called.
    assert.throws(() => vm.exports[5](o), (e) => e instanceof TypeError && RELEASED.test(e.message));
    assert.throws(() => { other.x = o; }, (e) => e instanceof TypeError && RELEASED.test(e.message));
    // Everything else still works, including values read from the same guest
    // objects again (new host values).
    assert.equal(other.i, 2);
    assert.equal(other.inner.s, 'in2');
    assert.equal(vm.exports[5](other), 2);
    assert.equal(new K(5).get2(), 10);
    assert.equal(vm.exports[2](1)(2), 3);
  });

  test('releasing twice, or a primitive, does nothing; a value of another VM or a host object is a TypeError', () => {
    const a = Microvium.restore(compile(SRC), {});
    const b = Microvium.restore(compile(SRC), {});
    const o = a.exports[1](1);
    a.release(o);
    a.release(o);
    a.release(1, 'x', undefined, null, true);
    const fromB = b.exports[1](1);
    assert.throws(() => a.release(fromB), TypeError);
    assert.throws(() => a.release({}), TypeError);
    assert.throws(() => a.release(() => 1), TypeError);
    assert.equal(fromB.i, 1, 'the value of the other VM is untouched');
  });

  test('a function released while its arguments convert still runs, not whatever takes its slot', () => {
    const vm = Microvium.restore(compile(`
      vmExport(1, (tag) => (o, n) => tag + ':' + o.x + ':' + n);
    `), {});
    const f = vm.exports[1]('first');
    let other;
    const arg = {
      get x() {
        vm.release(f);
        // Made now, it may take the slot that f had.
        other = vm.exports[1]('second');
        return 'x';
      },
    };
    assert.equal(f(arg, 7), 'first:x:7');
    assert.equal(other({ x: 'y' }, 8), 'second:y:8');
    assert.throws(() => f({ x: 1 }, 1), (e) => RELEASED.test(e.message));
  });

  test('the guest can collect a released value at once (no JavaScript collection needed)', () => {
    const vm = Microvium.restore(compile(SRC), {});
    vm.runGC(true);
    const base = vm.getMemoryStats().virtualHeapUsed;
    const held = [];
    for (let i = 0; i < 200; i++) held.push(vm.exports[1](i));
    vm.runGC(true);
    const full = vm.getMemoryStats().virtualHeapUsed;
    assert.ok(full > base + 200 * 10, `held values use the guest heap (${base} -> ${full} B)`);
    vm.release(...held);
    vm.runGC(true);
    const after = vm.getMemoryStats().virtualHeapUsed;
    assert.ok(after <= base + 64, `released values were collected by the guest (${base} -> ${full} -> ${after} B)`);
    assert.equal(Microvium.__internals.hostHeld(vm), 1, 'only the export is held');
  });

  test('the same guest object comes out again as a new, working host value', () => {
    const vm = Microvium.restore(compile(SRC), {});
    const first = vm.exports[4]();
    vm.release(first);
    const again = vm.exports[4]();
    assert.notEqual(again, first);
    assert.equal(again.name, 'kept');
    assert.deepEqual([...again.list], [1, 2]);
    assert.equal(vm.exports[4](), again, 'identity holds for the new host value');
  });

  test('export values are never released (they live as long as the VM)', () => {
    const vm = Microvium.restore(compile(SRC), {});
    const f = vm.exports[2];
    const K = vm.exports[3];
    vm.release(f, K, vm.exports[4]);
    assert.equal(f(1)(2), 3);
    assert.equal(new K(2).get2(), 4);
    assert.equal(vm.exports[2], f);
    assert.equal(vm.exports[4]().name, 'kept');
  });

  test('a promise is not released: it still settles', async () => {
    const vm = Microvium.restore(compile(SRC), {});
    const p = vm.exports[8](41);
    vm.release(p);
    assert.equal(await p, 42);
  });

  test('after dispose, release does nothing (the values already throw)', () => {
    const vm = Microvium.restore(compile(SRC), {});
    const o = vm.exports[1](1);
    vm.dispose();
    vm.release(o);
    assert.throws(() => o.i, /dispos/);
  });
});

describe('vm.scope(fn)', () => {
  test('releases every value made inside, keeps the result and values made before', () => {
    const vm = Microvium.restore(compile(SRC), {});
    const before = vm.exports[1](0);
    let inside;
    let innerList;
    const result = vm.scope(() => {
      inside = vm.exports[1](1);
      innerList = inside.list;
      assert.equal(before.i, 0, 'a value made before is used inside');
      const r = vm.exports[1](2);
      return r;
    });
    assert.equal(result.i, 2, 'the returned value is kept');
    assert.equal(before.inner.s, 'in0', 'a value made before is kept');
    assert.throws(() => inside.i, RELEASED);
    assert.throws(() => innerList[0], RELEASED);
  });

  test('nested scopes: the inner releases what it made; what it returns belongs to the outer', () => {
    const vm = Microvium.restore(compile(SRC), {});
    let a;
    let b;
    let c;
    const outer = vm.scope(() => {
      a = vm.exports[1](1);
      c = vm.scope(() => {
        b = vm.exports[1](2);
        return vm.exports[1](3);
      });
      assert.throws(() => b.i, RELEASED);
      assert.equal(c.i, 3, 'kept by the inner scope');
      assert.equal(a.i, 1, 'made by the outer scope: still alive inside it');
      return 'done';
    });
    assert.equal(outer, 'done');
    assert.throws(() => a.i, RELEASED);
    assert.throws(() => c.i, RELEASED);
  });

  test('a guest exception thrown out of the scope is kept; what else was made is released', () => {
    const vm = Microvium.restore(compile(SRC), {});
    let made;
    let caught;
    try {
      vm.scope(() => {
        made = vm.exports[1](1);
        vm.exports[7](5);
      });
    } catch (e) {
      caught = e;
    }
    assert.equal(caught.message, 'thrown5');
    assert.throws(() => made.i, RELEASED);
  });

  test('guest values reaching a host function during the scope are released with it', () => {
    let seen;
    const vm = Microvium.restore(compile(`
      const h = vmImport(1);
      vmExport(1, () => h({ a: 1 }));
    `), { 1: (o) => { seen = o; return o.a; } });
    assert.equal(vm.scope(() => vm.exports[1]()), 1);
    assert.throws(() => seen.a, RELEASED);
  });

  test('a long scope whose values V8 collects meanwhile: nested scopes still release exactly what they made', () => {
    const vm = Microvium.restore(compile(SRC), {});
    const survivors = [];
    let innerKept;
    let innerDropped;
    vm.scope(() => {
      for (let i = 0; i < 5000; i++) {
        const o = vm.exports[1](i); // most are dropped (and swept when V8 collects them)
        if (i % 1000 === 0) survivors.push(o);
        if (i === 2500) {
          innerKept = vm.scope(() => {
            for (let j = 0; j < 3000; j++) {
              const x = vm.exports[1](j);
              if (j === 2999) innerDropped = x;
            }
            return vm.exports[1](-1);
          });
          assert.throws(() => innerDropped.i, RELEASED);
          assert.equal(innerKept.i, -1);
        }
      }
      for (const o of survivors) assert.equal(typeof o.i, 'number');
      assert.equal(innerKept.i, -1);
    });
    for (const o of survivors) assert.throws(() => o.i, RELEASED);
    assert.throws(() => innerKept.i, RELEASED);
    assert.equal(vm.exports[1](7).i, 7);
  });

  test('fn must be a function; a disposed VM throws', () => {
    const vm = Microvium.restore(compile(SRC), {});
    assert.throws(() => vm.scope(42), TypeError);
    vm.dispose();
    assert.throws(() => vm.scope(() => 1), /dispos/);
  });
});

describe('opts.gc', () => {
  test('a function given as opts.gc runs when dropped values fill the guest heap; false turns collections off', () => {
    assert.equal(typeof gc, 'function');
    const calls = [];
    const vm = Microvium.restore(compile(FRESH), {}, { gc: (options) => { calls.push(options && options.type); gc(options); } });
    for (let i = 0; i < 20000; i++) vm.exports[1](i);
    assert.ok(calls.length > 0, 'the collector ran');
    assert.ok(calls.includes('minor'), 'a minor collection first: ' + calls.join());
    assert.equal(vm.exports[1](5).i, 5);

    const quiet = Microvium.restore(compile(FRESH), {}, { gc: false });
    const held = [];
    for (let i = 0; i < 300; i++) held.push(quiet.exports[1](i));
    quiet.release(...held);
    assert.equal(Microvium.__internals.hostHeld(quiet), 1, 'only the export is held');
  });

  test('anything else is a TypeError', () => {
    for (const bad of [1, 'gc', {}, true]) {
      assert.throws(() => Microvium.restore(compile(FRESH), {}, { gc: bad }), TypeError, String(bad));
    }
    Microvium.restore(compile(FRESH), {}, { gc: null });
    Microvium.restore(compile(FRESH), {}, { gc: undefined });
  });
});

test('each VM reports its native memory to V8 (napi_adjust_external_memory), and withdraws it on dispose', () => {
  const vm = Microvium.restore(compile(`
    let kept = undefined;
    vmExport(1, (n) => { let i = 0; while (i < n) { kept = { i: i, next: kept }; i++; } return n; });
  `), {});
  const reported = () => Microvium.__internals.reportedMemory(vm);
  vm.exports[1](10);
  const small = reported();
  vm.exports[1](2000); // about 20 kB more guest heap
  const grown = reported();
  assert.ok(grown >= vm.getMemoryStats().totalSize, `reported ${grown} B, the engine holds ${vm.getMemoryStats().totalSize} B`);
  assert.ok(grown - small > 16 * 1024, `reported ${small} B, then ${grown} B after 20 kB of guest allocations`);
  vm.dispose();
  // What stays (until the VM is collected) is the handle table's bookkeeping.
  assert.ok(reported() < small, `reported ${small} B when new, ${reported()} B after dispose`);
});

describe('VMs restored from the same snapshot', () => {
  // The VMs of a thread restored from equal bytes share one copy of the
  // snapshot (the engine only reads it); each keeps its own heap.
  const SHARED = `
    let count = 0;
    const buf = Microvium.newUint8Array(4);
    const rom = 'constant text';
    vmExport(1, () => { count = count + 1; buf[0] = count; return count; });
    vmExport(2, () => buf);
    vmExport(3, () => rom + ' ' + count);
  `;

  test('stay isolated from each other, and from later changes to the bytes they came from', () => {
    const bytes = compile(SHARED);
    const original = Uint8Array.from(bytes);
    const a = Microvium.restore(bytes, {});
    const b = Microvium.restore(Uint8Array.from(bytes), {});
    for (let i = 0; i < 5; i++) a.exports[1]();
    assert.equal(b.exports[1](), 1);
    assert.equal(a.exports[2]().slice()[0], 5);
    assert.equal(b.exports[2]().slice()[0], 1);
    // Overwriting the caller's buffer changes no VM, existing or new.
    bytes.fill(0);
    const c = Microvium.restore(original, {});
    assert.equal(a.exports[3](), 'constant text 5');
    assert.equal(c.exports[3](), 'constant text 0');
    a.dispose();
    // A VM outliving the one whose copy it shares.
    assert.equal(b.exports[3](), 'constant text 1');
    b.dispose();
    c.dispose();
  });

  test('thousands of idle VMs from one snapshot cost a few kB each', () => {
    // A snapshot of about 10 kB: a VM holding its own copy would cost that.
    const pad = Array.from({ length: 1500 }, (_, i) => JSON.stringify('text ' + i)).join(',');
    const big = SHARED + `const pad = [${pad}]; vmExport(4, (i) => pad[i]);`;
    const out = child(`
      const bytes = compile(${JSON.stringify(big)});
      const vms = [Microvium.restore(bytes, {})];
      const before = process.memoryUsage().rss;
      for (let i = 0; i < 5000; i++) vms.push(Microvium.restore(bytes, {}));
      const after = process.memoryUsage().rss;
      console.log(JSON.stringify({ perVm: (after - before) / 5000, snapshot: bytes.length }));
    `);
    assert.ok(out.snapshot > 8000, `snapshot of ${out.snapshot} bytes`);
    assert.ok(out.perVm < out.snapshot / 2, `${Math.round(out.perVm)} bytes per VM for a ${out.snapshot}-byte snapshot`);
  });
});
