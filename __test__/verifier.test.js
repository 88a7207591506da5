'use strict';
// The restore-time verifier (c/verifier.c): it must accept every snapshot
// the compiler (and the engine's own createSnapshot) produces, and reject
// bytecode or heap data that would let the interpreter, now running without
// a check per instruction or per pointer, leave its frame or its heap.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, runBoth, runIsolated } = require('./helpers');
const { fixCrc } = require('../fuzz/crc.js');

// Guest programs in the shapes of Microvium's own end-to-end tests: every
// instruction family (literals, variables, closures and scopes, loops and
// branches, calls, classes, try/catch/finally, async/await with and without
// try blocks, arrays, objects, Uint8Array, typeof, switch). Export 1
// reports what it computes through import 1.
const PROGRAMS = {
  arithmetic: `
    const report0 = vmImport(1);
    function report(x) { if (typeof x === 'object' && x !== null) { for (let i = 0; i < x.length; i++) report0(x[i]); } else report0(x); }
    vmExport(1, () => {
      let a = 7, b = -3, x = 0.5;
      report([a + b, a - b, a * b, a / b, a % b, -a, +x, a ** 2, (a / 2) | 0, ~a, a << 3, a >> 1, -a >>> 28, a & 3, a | 8, a ^ 5]);
      report([a < b, a > b, a <= 7, a >= 8, a === 7, a !== 7, !a, typeof a, typeof 'x', typeof null, typeof undefined, typeof {}, typeof [], typeof (() => 1)]);
      report([1e9 * 3, 0x7fffffff + 1, NaN !== NaN, 'a' + 1 + 2, 1 + 2 + 'a']);
    });`,
  closures: `
    const report0 = vmImport(1);
    function report(x) { if (typeof x === 'object' && x !== null) { for (let i = 0; i < x.length; i++) report0(x[i]); } else report0(x); }
    function counter(start) { let n = start; return { inc: () => ++n, get: () => n }; }
    function adders() { const fs = []; for (let i = 0; i < 5; i++) fs.push((x) => x + i); return fs; }
    function nest(a) { return (b) => (c) => (d) => a + b + c + d; }
    vmExport(1, () => {
      const c = counter(10); c.inc(); c.inc();
      report(c.get());
      report(adders().length);
      const fs = adders(); let s = 0; for (let i = 0; i < fs.length; i++) s += fs[i](i);
      report(s);
      report(nest(1)(2)(3)(4));
      let shadow = 1; { let shadow = 2; report(shadow); } report(shadow);
    });`,
  control: `
    const report0 = vmImport(1);
    function report(x) { if (typeof x === 'object' && x !== null) { for (let i = 0; i < x.length; i++) report0(x[i]); } else report0(x); }
    function classify(x) {
      switch (x) { case 1: return 'one'; case 2: case 3: return 'few'; default: return x > 100 ? 'many' : 'some'; }
    }
    vmExport(1, () => {
      let out = [];
      for (let i = 0; i < 6; i++) { if (i === 4) out.push('skip'); else out.push(classify(i * 50 + 1)); }
      let j = 0; while (true) { j++; if (j > 300) break; }
      while (j > 290) j--;
      out.push(j); out.push(1 && 2); out.push(0 || 'x'); out.push(true ? 'y' : 'n');
      report(out);
    });`,
  exceptions: `
    const report0 = vmImport(1);
    function report(x) { if (typeof x === 'object' && x !== null) { for (let i = 0; i < x.length; i++) report0(x[i]); } else report0(x); }
    function thrower(x) { if (x > 2) throw { code: x }; return x; }
    function deep(n) { if (n === 0) throw 'bottom'; return deep(n - 1) + 1; }
    vmExport(1, () => {
      const log = [];
      for (let i = 0; i < 5; i++) {
        try { log.push(thrower(i)); } catch (e) { log.push('caught ' + e.code); }
      }
      try { try { deep(5); } catch (e) { log.push(e); throw e + '!'; } } catch (e) { log.push(e); }
      function inTry() { try { return 'returned from try'; } catch (e) { return 'no'; } }
      log.push(inTry());
      function nested() { let r = 0; try { try { throw 1; } catch (e) { r = e + 1; } } catch (e) { r = -1; } return r; }
      log.push(nested());
      report(log);
    });`,
  objects: `
    const report0 = vmImport(1);
    function report(x) { if (typeof x === 'object' && x !== null) { for (let i = 0; i < x.length; i++) report0(x[i]); } else report0(x); }
    class Animal { constructor(name) { this.name = name; } speak() { return this.name + ' speaks'; } }
    class Dog { constructor(name) { this.a = new Animal(name); } speak() { return this.a.speak() + ' woof'; } }
    vmExport(1, () => {
      const o = { a: 1, b: 'two', c: [1, 2, 3], d: { e: null } };
      o.f = o.a + o.c.length; o.a = undefined;
      report([o.b, o.c[2], o.d.e, o.f]);
      report(new Dog('rex').speak());
      const arr = [];
      for (let i = 0; i < 40; i++) arr[i] = i * i;
      arr.length = 10;
      report([arr.length, arr[9], arr[10]]);
    });`,
  strings: `
    const report0 = vmImport(1);
    function report(x) { if (typeof x === 'object' && x !== null) { for (let i = 0; i < x.length; i++) report0(x[i]); } else report0(x); }
    vmExport(1, () => {
      let s = '';
      for (let i = 0; i < 20; i++) s += i % 3 ? 'x' : i;
      const k = 'ke' + 'y';
      const o = {}; o[k] = 5; o['key2'] = 6;
      report([s, o.key, o[k + '2'], 'abc' + 'def', ('' + 123) + 4]);
    });`,
};

// Async functions: awaits inside and outside try blocks, nested async
// calls, rejections caught across an await (the resume table's case).
const ASYNC_SOURCE = `
  const report = vmImport(1);
  const hostAsync = vmImport(2);
  async function inner(x) { return x + 1; }
  async function failing(x) { throw 'fail ' + x; }
  async function run(x) {
    const log = [];
    log.push(await inner(x));
    try {
      log.push(await hostAsync(x));
      log.push(await failing(x));
    } catch (e) {
      log.push('caught ' + e);
    }
    try {
      try { await failing(2); } catch (e) { log.push('inner ' + e); throw 'again'; }
    } catch (e) { log.push('outer ' + e); }
    const arr = [1, await inner(2), await inner(3), 4];
    log.push(arr.length); log.push(arr[1]); log.push(arr[2]);
    report(log);
    return log.length;
  }
  vmExport(1, run);
`;

describe('verifier: accepts what the compiler emits', () => {
  for (const [name, source] of Object.entries(PROGRAMS)) {
    test(`${name}: restores and computes what Node.js computes`, () => {
      const { node, guest } = runBoth(source);
      assert.deepEqual(guest, node);
    });
  }

  test('async functions with awaits inside try blocks resume and report like Node.js', async () => {
    const reported = [];
    const vm = Microvium.restore(compile(ASYNC_SOURCE), {
      1: (x) => { reported.push([...x]); },
      2: async (x) => x * 10,
    });
    const result = await vm.exports[1](5);
    assert.equal(result, 8);
    assert.deepEqual(reported, [[6, 50, 'caught fail 5', 'inner fail 2', 'outer again', 4, 3, 4]]);
  });

  test('snapshots the engine writes (after running, with a suspended async function) verify again', async () => {
    let release;
    const vm = Microvium.restore(compile(`
      const wait = vmImport(2);
      let state = { n: 0, items: [] };
      async function worker() {
        try {
          for (let i = 0; i < 3; i++) { state.items.push(i); await wait(i); }
        } catch (e) { state.n = -1; }
      }
      vmExport(1, () => { worker(); return state.items.length; });
      vmExport(2, () => state.items.length);
      vmExport(3, () => { let c = 0; const fs = []; for (let i = 0; i < 10; i++) fs.push(() => c += i); fs.forEach ? 0 : 0; for (let i = 0; i < 10; i++) fs[i](); return c; });
    `), { 2: async () => { await new Promise((r) => { release = r; }); } });
    assert.equal(vm.exports[1](), 1);
    assert.equal(vm.exports[3](), 45);
    vm.runGC(true);
    // The VM is idle with `worker` suspended at an await inside a try
    // block: its closure holds the saved stack, catch target included.
    const again = Microvium.restore(vm.createSnapshot(), { 2: () => new Promise(() => {}) });
    assert.equal(again.exports[2](), 1);
    assert.equal(again.exports[3](), 45);
    release(0);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(vm.exports[2](), 2);
  });
});

// ---- Crafted snapshots ----------------------------------------------------

// `let g = [1,2]; vmExport(1, (a, b) => { let c = a + b; g.push(c); return c; })`
// compiles (microvium 8.0.0) to a function of 22 bytes at the export's
// address: Literal(deleted) LoadArg(1) LoadArg(2) Add StoreVar(0)
// Literal(undefined) LoadGlobal[0] LoadVar(2) Literal('push') ObjectGet
// StoreVar(1) LoadVar(0) Call(2, void) LoadVar(0) Return.
const BASE = 'let g = [1,2]; vmExport(1, (a, b) => { let c = a + b; g.push(c); return c; });';

const u16 = (b, at) => b[at] | (b[at + 1] << 8);
const w16 = (b, at, v) => { b[at] = v & 0xff; b[at + 1] = (v >> 8) & 0xff; };
const section = (b, i) => u16(b, 12 + 2 * i);
const BCS = { EXPORTS: 1, ROM: 5, GLOBALS: 6, HEAP: 7 };

function base() {
  const b = compile(BASE);
  const fn = u16(b, section(b, BCS.EXPORTS) + 2) & 0xfffc;
  // the layout this file's patches assume
  assert.deepEqual([...b.subarray(fn, fn + 3)], [0x88, 0x19, 0x00], 'Literal(deleted) first');
  assert.equal(b[fn + 0x15], 0x60, 'Return last');
  return { b, fn };
}

function rejects(b, pattern) {
  fixCrc(b);
  let err;
  try { Microvium.restore(b, {}); } catch (e) { err = e; }
  assert.ok(err instanceof Microvium.MicroviumError, `restore should fail: ${err}`);
  assert.equal(err.code, 'MVM_E_INVALID_BYTECODE');
  assert.match(err.detail, pattern);
}

describe('verifier: rejects what would leave the frame or the heap', () => {
  test('the unpatched base program is accepted', () => {
    const { b } = base();
    const vm = Microvium.restore(b, {});
    assert.equal(vm.exports[1](2, 3), 5);
  });

  test('a function header that understates the stack the function uses', () => {
    const { b, fn } = base();
    b[fn - 2] = 1; // maxStackDepth 1: the body reaches 5 (2 words of slack, see c/verifier.c)
    rejects(b, /stack height \d+ at 0x[0-9a-f]+ outside 0\.\.3/);
  });

  test('LOAD_VAR past the bottom of the frame (the caller\'s saved registers)', () => {
    const { b, fn } = base();
    b[fn + 0x11] = 0x1f; // LoadVar(index 0) -> LOAD_VAR_1 15
    rejects(b, /LOAD_VAR outside the frame/);
  });

  test('STORE_VAR past the bottom of the frame', () => {
    const { b, fn } = base();
    b[fn + 0x10] = 0xaf; // StoreVar(1) -> STORE_VAR_1 15
    rejects(b, /STORE_VAR outside the frame/);
  });

  test('a global index past the globals section', () => {
    const { b, fn } = base();
    w16(b, fn + 9, 0x40); // LoadGlobal [0] -> [64]
    rejects(b, /global index out of range/);
  });

  test('a jump out of ROM', () => {
    const { b, fn } = base();
    b[fn + 0x14] = 0x76; b[fn + 0x15] = 0x7f; // LoadVar(0) Return -> JUMP_1 +127
    rejects(b, /jump leaves ROM/);
  });

  test('a call popping more than the stack holds', () => {
    const { b, fn } = base();
    b[fn + 0x13] = 0x8a; // Call(2, void) -> Call(10, void)
    rejects(b, /pops \d+ of \d+ slots/);
  });

  test('an unknown opcode', () => {
    const { b, fn } = base();
    b[fn + 3] = 0x64; // LoadArg(1) -> Ex1 RESERVED_VIRTUAL_NEW
    rejects(b, /reserved Ex1 opcode/);
  });

  test('ARRAY_GET_1, which the engine implements with the wrong register', () => {
    const { b, fn } = base();
    b[fn + 3] = 0xc0;
    rejects(b, /ARRAY_GET_1/);
  });

  test('a literal pointing into the middle of a function', () => {
    const { b, fn } = base();
    w16(b, fn + 0x0e, (fn + 4) | 1); // Literal('push') -> a ROM pointer into this function
    rejects(b, /literal at/);
  });

  test('a global holding a pointer into the middle of a heap allocation', () => {
    const { b } = base();
    const g = section(b, BCS.GLOBALS);
    w16(b, g, u16(b, g) + 2);
    rejects(b, /global 0: 0x[0-9a-f]+ does not point to a heap allocation/);
  });

  test('an array whose length runs past its data', () => {
    const { b } = base();
    const g = section(b, BCS.GLOBALS), heap = section(b, BCS.HEAP);
    const arr = heap + u16(b, g); // the array [1, 2]
    w16(b, arr + 2, (40 << 2) | 3); // viLength 40, data of 2
    rejects(b, /length beyond its data/);
  });

  test('a heap allocation of a type that cannot be in the heap (a tombstone)', () => {
    const { b } = base();
    const heap = section(b, BCS.HEAP);
    w16(b, heap, u16(b, heap) & 0x0fff); // first allocation's type -> TC_REF_TOMBSTONE
    rejects(b, /heap: allocation at 0x[0-9a-f]+ has type 0/);
  });

  test('a cycle of prototypes', () => {
    const b = compile('const a = {x: 1}; vmExport(1, () => a.x);');
    const heap = section(b, BCS.HEAP);
    const g = section(b, BCS.GLOBALS);
    const obj = u16(b, g); // a's short pointer
    w16(b, heap + obj + 2, obj); // a.__proto__ = a
    rejects(b, /cycle of prototypes/);
  });

  test('an internal slot after a property (vm_objectKeys would leave a key uninitialized)', () => {
    // Found by the fuzzer once the per-pointer checks were gone: the engine
    // counts an object's keys skipping only a leading run of internal slots
    // (negative int14 keys) but fills the array skipping them anywhere.
    const b = compile('const o = { a: 1, b: 2 }; vmExport(1, () => Reflect.ownKeys(o).length);');
    const heap = section(b, BCS.HEAP), g = section(b, BCS.GLOBALS);
    const o = heap + u16(b, g + 2); // global 1 is `o` (global 0: the Reflect object)
    assert.equal(u16(b, o - 2), (12 << 12) | 12, 'a property list of two properties');
    w16(b, o + 8, 0xffff); // key of the second property -> int14 -1
    rejects(b, /an internal slot after a property/);
  });

  test('a heap pointer stored in ROM (the collector moves its target and leaves it stale)', () => {
    // Found by the fuzzer: BIN_ARRAY_PROTO held a heap pointer; after a
    // collection it led to an array, whose prototype lookup went round for
    // ever. ROM reaches the heap only through handles.
    const { b } = base();
    const g = section(b, BCS.GLOBALS);
    w16(b, section(b, BCS.EXPORTS) + 2, u16(b, g)); // export 1 -> the array's heap pointer
    rejects(b, /export 1: 0x[0-9a-f]+ is a heap pointer in ROM/);
  });

  test('a class that is its own staticProps (property reads would follow it for ever)', () => {
    // Found by the fuzzer: getProperty goes from a class to its staticProps
    // while that is a class, inside one instruction (no gas, no poll).
    const b = compile('class A { constructor() { this.y = 1; } } vmExport(1, () => A.x); vmExport(2, A);');
    const exports = section(b, BCS.EXPORTS);
    assert.equal(u16(b, exports + 4), 2);
    const cls = u16(b, exports + 6) & 0xfffc; // in ROM
    assert.equal(u16(b, cls - 2) >> 12, 9, 'a class');
    w16(b, cls + 2, cls | 1);
    rejects(b, /a cycle of classes/);
  });

  test('the reason reaches the user: MVM_E_INVALID_BYTECODE with a detail, in a child process', () => {
    const { b, fn } = base();
    b[fn + 0x11] = 0x1f;
    fixCrc(b);
    const r = runIsolated(`
      try { Microvium.restore(new Uint8Array(${JSON.stringify([...b])}), {}); console.log('restored'); }
      catch (e) { console.log(e.code, e.errno, e.message, '|', e.detail); }
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^MVM_E_INVALID_BYTECODE 18 Microvium Error: MVM_E_INVALID_BYTECODE \(18\) \| function 0x[0-9a-f]+: LOAD_VAR outside/);
  });
});

describe('verifier: what stays checked at run time', () => {
  test('a resumed async function whose saved catch targets were changed is stopped (the resume table)', () => {
    // Two suspended calls of `w`, each waiting inside two try blocks: its
    // closure holds the saved stack, both catch targets included. The
    // snapshot's heap is then edited to swap the two handlers: every value
    // is still valid (the verifier accepts it), but a throw would land in
    // the outer catch block with the inner one's stack.
    const src = `
      const report = vmImport(1);
      let resolveIt;
      const p = new Promise((r) => { resolveIt = r; });
      async function w(tag) {
        let acc = tag;
        try {
          try { const v = await p; acc += v; throw 'inner'; } catch (e) { acc += e; }
          acc += await p;
        } catch (e) { acc += 'outer'; }
        report(acc);
      }
      vmExport(1, () => { w('a'); return 1; });
      vmExport(2, (x) => resolveIt(x));
    `;
    const reported = [];
    const vm = Microvium.restore(compile(src), { 1: (x) => reported.push(x) });
    vm.exports[1]();
    const b = new Uint8Array(vm.createSnapshot());
    // The handler values of the START_TRY instructions (Ex2, Ex4 0, u16).
    const handlers = [];
    for (let i = section(b, BCS.ROM); i + 4 <= section(b, BCS.GLOBALS); i++) {
      const h = u16(b, i + 2);
      if (b[i] === 0x7d && b[i + 1] === 0x00 && (h & 3) === 1 && (u16(b, (h & 0xfffc) - 2) & 0xf800) === 0x5800) handlers.push(h);
    }
    assert.equal(handlers.length, 2, 'two try blocks');
    let swapped = 0;
    for (let i = section(b, BCS.HEAP); i + 2 <= b.length; i += 2) {
      if (u16(b, i) === handlers[1]) { w16(b, i, handlers[0]); swapped++; }
    }
    assert.ok(swapped >= 1, 'the inner catch target is saved in the closure');
    fixCrc(b);
    const edited = Microvium.restore(b, { 1: (x) => reported.push(x) });
    assert.throws(() => edited.exports[2]('V'), (e) => e.code === 'MVM_E_INVALID_BYTECODE');
    // the unedited VM resumes normally
    vm.exports[2]('W');
    assert.deepEqual(reported, ['aWinnerW']);
  });

  test('a closure that is its own target is a fatal error of its VM, not a hang', () => {
    // Slot 0 of a closure (its target) is a slot the program can write
    // (STORE_SCOPED reaches it); here the snapshot has it already, which
    // the verifier accepts (every value is valid). Calling the closure
    // would follow the chain for ever inside one instruction.
    const b = compile('const f = (() => { let x = 1; return () => x; })(); vmExport(1, () => f());');
    const g = section(b, BCS.GLOBALS), heap = section(b, BCS.HEAP);
    const f = u16(b, g);
    assert.equal(u16(b, heap + f - 2) >> 12, 15, 'a closure');
    w16(b, heap + f, f); // f's target: f
    fixCrc(b);
    const r = runIsolated(`
      const vm = Microvium.restore(new Uint8Array(${JSON.stringify([...b])}), {});
      try { vm.exports[1](); console.log('returned'); } catch (e) { console.log(e.code); }
    `, { timeout: 30000 });
    assert.equal(r.signal, null, 'the call hung: ' + r.stderr);
    assert.equal(r.stdout.trim(), 'MVM_E_INVALID_BYTECODE');
  });
});
