'use strict';
// The runtime's foundation: restoring snapshots and calling into them,
// primitive values both ways, the guest's arithmetic and number formatting,
// errors, bad input, contained fatal errors and re-entrancy. (The build
// itself is checked by running the README's commands, not here.)
//
// Every guest script is compiled from source in the test with the
// `microvium` compiler (helpers.compile). Anything that could crash the
// process runs in a child process (helpers.runIsolated), so that a crash
// fails that test and not the whole runner.
//
// Run: node --expose-gc --test __test__/foundation.test.js

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { compile, runIsolated, isolated, root, ERRNO, engineMessage, crc16, gc } = require('./helpers.js');

const Microvium = require('..');
const { VM, MicroviumError } = Microvium;

// ---------------------------------------------------------------------------
// Shared helpers


/** Asserts that `e` is a MicroviumError for `code`, in the documented format. */
function assertMvmError(e, code, detail) {
  assert.ok(e instanceof MicroviumError, `expected a MicroviumError, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
  assert.ok(e instanceof Error);
  assert.equal(e.code, code, e.message);
  assert.equal(e.errno, ERRNO[code]);
  assert.equal(typeof e.errno, 'number');
  const prefix = engineMessage(code);
  assert.ok(e.message.startsWith(prefix), `message ${JSON.stringify(e.message)} does not start with ${JSON.stringify(prefix)}`);
  if (detail) assert.match(`${e.message} ${e.detail ?? ''}`, detail);
  return true;
}

/** assert.throws for a MicroviumError with `code`; returns the error. */
function throwsMvm(fn, code, detail) {
  let caught;
  assert.throws(fn, (e) => { caught = e; return assertMvmError(e, code, detail); });
  return caught;
}


// Deterministic pseudo-random numbers (tests must be reproducible).
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

// A small guest used by several tests.
const BASIC = `
const log = vmImport(7);
let counter = 10;
vmExport(1, (a, b) => a + b);
vmExport(2, (x) => { counter++; return x + counter; });
vmExport(3, (x) => log(x, x + 1));
vmExport(40000, 'forty thousand');
`;

// ---------------------------------------------------------------------------
// Restore and call

describe('restore and call', () => {
  const snapshot = compile(BASIC);
  const imports = { 7: (a, b) => a * b };

  test('Microvium.restore with a Uint8Array returns a VM whose exports are callable', () => {
    const vm = Microvium.restore(snapshot, imports);
    assert.ok(vm instanceof VM);
    assert.equal(typeof vm.exports[1], 'function');
    assert.equal(vm.exports[1](2, 3), 5);
    assert.equal(vm.exports[1]('a', 'b'), 'ab');
    assert.equal(vm.exports[40000], 'forty thousand');
  });

  test('new VM(...) is the same as restore', () => {
    const vm = new VM(snapshot, imports);
    assert.ok(vm instanceof VM);
    assert.equal(vm.exports[1](20, 22), 42);
    assert.equal(vm.exports[3](6), 42); // guest calls import 7 with (6, 7)
  });

  test('restore accepts a Buffer, including one that is a view into a larger pool', () => {
    assert.equal(Microvium.restore(Buffer.from(snapshot), imports).exports[2](0), 11);
    const pool = Buffer.alloc(snapshot.length + 37, 0xAA);
    Buffer.from(snapshot).copy(pool, 13);
    const view = pool.subarray(13, 13 + snapshot.length);
    assert.equal(view.byteOffset > 0 || view.buffer.byteLength > view.length, true);
    assert.equal(new VM(view, imports).exports[2](0), 11);
  });

  test('restore accepts a Uint8Array view with a non-zero byteOffset', () => {
    const big = new Uint8Array(snapshot.length + 20).fill(0x55);
    big.set(snapshot, 7);
    const vm = Microvium.restore(big.subarray(7, 7 + snapshot.length), imports);
    assert.equal(vm.exports[1](1, 2), 3);
  });

  test('restore accepts an ArrayBuffer', () => {
    const ab = new ArrayBuffer(snapshot.length);
    new Uint8Array(ab).set(snapshot);
    assert.equal(Microvium.restore(ab, imports).exports[1](4, 5), 9);
    assert.equal(new VM(ab, imports).exports[1](4, 6), 10);
  });

  test('restore accepts a plain array of bytes', () => {
    const arr = Array.from(snapshot);
    assert.equal(Microvium.restore(arr, imports).exports[1](7, 8), 15);
    assert.equal(new VM(arr, imports).exports[40000], 'forty thousand');
  });

  test('the caller may reuse its buffer after restore (the bytes are copied)', () => {
    const u8 = snapshot.slice();
    const vmU8 = Microvium.restore(u8, imports);
    u8.fill(0);
    const buf = Buffer.from(snapshot);
    const vmBuf = new VM(buf, imports);
    buf.fill(0xFF);
    const ab = new ArrayBuffer(snapshot.length);
    new Uint8Array(ab).set(snapshot);
    const vmAb = Microvium.restore(ab, imports);
    new Uint8Array(ab).fill(0x13);
    const arr = Array.from(snapshot);
    const vmArr = Microvium.restore(arr, imports);
    arr.fill(0);
    if (gc) gc();
    for (const vm of [vmU8, vmBuf, vmAb, vmArr]) {
      assert.equal(vm.exports[2](100), 111);
      assert.equal(vm.exports[2](100), 112);
      assert.equal(vm.exports[3](3), 12);
      assert.equal(vm.exports[40000], 'forty thousand');
      // A snapshot of the VM taken after the caller's buffer was overwritten
      // still restores, with the state that the guest reached.
      const again = Microvium.restore(vm.createSnapshot(), imports);
      assert.equal(again.exports[2](0), 13);
    }
  });

  test('vm.exports[id] is the same function object every time it is read', () => {
    const vm = Microvium.restore(snapshot, imports);
    const f1 = vm.exports[1];
    const f2 = vm.exports[1];
    const f3 = vm.exports['1'];
    assert.equal(f1, f2);
    assert.equal(f1, f3);
    vm.exports[2](1); // run guest code (allocations) in between
    if (gc) gc();
    vm.runGC(true);
    assert.equal(vm.exports[1], f1);
    assert.equal(vm.exports[2], vm.exports[2]);
    assert.notEqual(vm.exports[1], vm.exports[2]);
    // Another VM gives other function objects.
    const other = Microvium.restore(snapshot, imports);
    assert.notEqual(other.exports[1], f1);
  });

  test('Object.keys(vm.exports) lists exactly the exported ids', () => {
    const vm = Microvium.restore(snapshot, imports);
    assert.deepEqual(Object.keys(vm.exports).sort(), ['1', '2', '3', '40000'].sort());
    assert.equal(1 in vm.exports, true);
    assert.equal(4 in vm.exports, false);
    assert.equal(vm.exports[4], undefined);
    const none = Microvium.restore(compile('let x = 1;'));
    assert.deepEqual(Object.keys(none.exports), []);
    const edge = Microvium.restore(compile('vmExport(0, 1); vmExport(65535, 2); vmExport(9, undefined);'));
    assert.deepEqual(Object.keys(edge.exports).sort(), ['0', '65535', '9'].sort());
    assert.equal(edge.exports[0], 1);
    assert.equal(edge.exports[65535], 2);
    assert.equal(edge.exports[9], undefined);
  });

  test('host imports are called with the converted arguments and their results go back', () => {
    const seen = [];
    const vm = Microvium.restore(compile(`
      const h = vmImport(3);
      const k = vmImport(65535);
      vmExport(1, () => h(1, 'two', true, null, undefined, 1.5, -0, NaN));
      vmExport(2, () => h());
      vmExport(3, (x) => k(x) + 1);
      vmExport(4, () => { const r = h(); return r === undefined; });
    `), {
      3: (...args) => { seen.push(args); return args.length; },
      65535: (x) => x * 10,
    });
    assert.equal(vm.exports[1](), 8);
    assert.equal(seen[0].length, 8);
    assert.deepEqual(seen[0].slice(0, 6), [1, 'two', true, null, undefined, 1.5]);
    assert.ok(Object.is(seen[0][6], -0));
    assert.ok(Number.isNaN(seen[0][7]));
    assert.equal(vm.exports[2](), 0);
    assert.deepEqual(seen[1], []);
    assert.equal(vm.exports[3](4), 41);
    let ret;
    const vm2 = Microvium.restore(compile('const h = vmImport(1); vmExport(1, () => { const r = h(); return r === undefined; });'), { 1: () => ret });
    assert.equal(vm2.exports[1](), true);
    ret = 0;
    assert.equal(vm2.exports[1](), false);
  });

  test('the returned VM is not thenable, so `await restore(...)` works', async () => {
    const vm = Microvium.restore(snapshot, imports);
    assert.equal('then' in vm, false);
    assert.equal(vm.then, undefined);
    const awaited = await Microvium.restore(snapshot, imports);
    assert.ok(awaited instanceof VM);
    assert.equal(awaited.exports[1](1, 1), 2);
  });

  test('CommonJS require: by path and by package name', () => {
    assert.equal(require('@microvium/runtime'), Microvium);
    assert.equal(typeof Microvium.restore, 'function');
    assert.equal(typeof Microvium.VM, 'function');
    assert.equal(typeof Microvium.MicroviumError, 'function');
    assert.equal(typeof Microvium.engineVersion, 'string');
    assert.equal(Microvium.engineVersion, '8.0.0');
    assert.equal(Microvium.default, Microvium);
  });

  test('ESM import (dynamic, from CommonJS): default and named exports', async () => {
    const ns = await import('@microvium/runtime');
    assert.equal(ns.default, Microvium);
    assert.equal(ns.default.default, ns.default);
    assert.equal(ns.restore, Microvium.restore);
    assert.equal(ns.VM, Microvium.VM);
    assert.equal(ns.MicroviumError, Microvium.MicroviumError);
    assert.equal(ns.engineVersion, Microvium.engineVersion);
    const vm = ns.restore(snapshot, imports);
    assert.ok(vm instanceof ns.VM);
    assert.equal(vm.exports[1](40, 2), 42);
  });

  test('ESM in a .mjs module (static imports, default and named)', () => {
    // Without NODE_TEST_CONTEXT the child runner prints its own TAP report.
    const childEnv = { ...process.env };
    delete childEnv.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', path.join(__dirname, 'esm.test.mjs')],
      { encoding: 'utf8', timeout: 60000, env: childEnv });
    assert.equal(r.signal, null, r.stdout + r.stderr);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# pass [1-9]/);
    assert.match(r.stdout, /# fail 0/);
  });
});

// ---------------------------------------------------------------------------
// Primitives

const PRIMITIVES = [
  undefined, null, true, false,
  0, -0, 1, -1, 42, 255, 256, 8191, 8192, -8192, 32767, 32768, -32768, -32769,
  2147483647, -2147483648, 2147483648, -2147483649, 4294967295, 4294967296,
  2 ** 53, -(2 ** 53), 2 ** 53 + 2, 1e21, 1e300, -1e300,
  0.5, -1.5, 0.1, 0.1 + 0.2, 1 / 3, 123.456, -0.000001, 1e-7, 5e-324, -5e-324,
  Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON,
  NaN, Infinity, -Infinity,
  '', ' ', 'a', 'hello', '__proto__', 'length', 'constructor', 'prototype', 'toString',
  '0', '1', '-0', 'NaN', 'undefined', 'null', 'true',
  'héllo wörld', 'Ünïcödé', '日本語テキスト', 'Ελληνικά', '\u00ff', '\u0100', '\uffff',
  '😀', '👍🏽', 'a😀b', '𝄞', '\u{10FFFF}',
  'a\u0000b', '\u0000', '\u0000\u0000', 'end\u0000',
  'line\nbreak\ttab', '"quotes\'', 'x'.repeat(1000), '😀'.repeat(300),
];

function describeValue(v) {
  if (typeof v === 'string') return v.length > 40 ? `string(${v.length}) ${JSON.stringify(v.slice(0, 20))}...` : JSON.stringify(v);
  if (Object.is(v, -0)) return '-0';
  return String(v);
}

describe('primitive values, exactly, both ways', () => {
  const snapshot = compile(`
    const h = vmImport(1);
    vmExport(1, (x) => x);
    vmExport(2, (x) => h(x));
    vmExport(3, (x) => typeof x);
    vmExport(4, (a, b) => a === b);
    vmExport(5, (x) => { const o = { v: x }; return o.v; });
    vmExport(6, () => h());
  `);

  test('host -> guest -> host (as argument and return value)', () => {
    const vm = Microvium.restore(snapshot, { 1: (x) => x });
    for (const v of PRIMITIVES) {
      const r = vm.exports[1](v);
      assert.ok(Object.is(r, v), `identity of ${describeValue(v)} gave ${describeValue(r)}`);
      const r2 = vm.exports[5](v);
      assert.ok(Object.is(r2, v), `through a guest object: ${describeValue(v)} gave ${describeValue(r2)}`);
    }
  });

  test('guest -> host (as import argument) and host -> guest (as import result)', () => {
    let seen;
    let result;
    const vm = Microvium.restore(snapshot, { 1: (...args) => { seen = args; return result; } });
    for (const v of PRIMITIVES) {
      result = 'sentinel';
      vm.exports[2](v);
      assert.equal(seen.length, 1);
      assert.ok(Object.is(seen[0], v), `import argument ${describeValue(v)} arrived as ${describeValue(seen[0])}`);
      result = v;
      const r = vm.exports[6]();
      assert.ok(Object.is(r, v), `import result ${describeValue(v)} came back as ${describeValue(r)}`);
    }
  });

  test('typeof in the guest matches the host', () => {
    const vm = Microvium.restore(snapshot, { 1: (x) => x });
    for (const v of PRIMITIVES) {
      assert.equal(vm.exports[3](v), typeof v, describeValue(v));
    }
  });

  test('strings from the host equal the same literals in the guest', () => {
    const vm = Microvium.restore(compile(`
      vmExport(1, (x) => x === '');
      vmExport(2, (x) => x === '__proto__');
      vmExport(3, (x) => x === 'length');
      vmExport(4, (x) => x === 'héllo wörld');
      vmExport(5, (x) => x === '😀');
      vmExport(6, (x) => x === 'a\\u0000b');
      vmExport(7, (x) => x === 'a\\u0000c');
      vmExport(8, (x, y) => x + y);
      vmExport(9, () => ['', '__proto__', 'length', 'héllo wörld', '😀', 'a\\u0000b', '日本語']);
    `));
    assert.equal(vm.exports[1](''), true);
    assert.equal(vm.exports[1](' '), false);
    assert.equal(vm.exports[2]('__proto__'), true);
    assert.equal(vm.exports[2]('__proto'), false);
    assert.equal(vm.exports[3]('length'), true);
    assert.equal(vm.exports[4]('héllo wörld'), true);
    assert.equal(vm.exports[4]('hello world'), false);
    assert.equal(vm.exports[5]('😀'), true);
    assert.equal(vm.exports[6]('a\u0000b'), true);
    assert.equal(vm.exports[6]('a'), false, 'the string must not be cut at the NUL');
    assert.equal(vm.exports[7]('a\u0000b'), false);
    assert.equal(vm.exports[8]('a\u0000', '\u0000b'), 'a\u0000\u0000b');
    assert.equal(vm.exports[8]('😀', 'é'), '😀é');
    assert.equal(vm.exports[8]('', ''), '');
    assert.equal(vm.exports[8]('__proto__', 'length'), '__proto__length');
  });

  test('values produced in the guest (literals and arithmetic) arrive exactly', () => {
    const vm = Microvium.restore(compile(`
      vmExport(1, () => -0);
      vmExport(2, (x) => x * -1);
      vmExport(3, (x) => 1 / x);
      vmExport(4, (x) => x + 1);
      vmExport(5, (x) => x / 2);
      vmExport(6, () => 0 / 0);
      vmExport(7, () => '😀');
      vmExport(8, () => 'a\\u0000b');
      vmExport(9, () => '');
      vmExport(10, () => '__proto__');
      vmExport(11, () => 'length');
      vmExport(12, () => 'Ünïcödé 日本語');
      vmExport(13, () => 2147483647 + 1);
      vmExport(14, () => -2147483648 - 1);
      vmExport(15, () => 9007199254740992);
      vmExport(16, () => 0.1 + 0.2);
      vmExport(17, () => undefined);
      vmExport(18, () => null);
      vmExport(19, () => true);
      vmExport(20, () => false);
    `));
    assert.ok(Object.is(vm.exports[1](), -0));
    assert.ok(Object.is(vm.exports[2](-0), 0));
    assert.ok(Object.is(vm.exports[2](-0.5), 0.5));
    assert.equal(vm.exports[3](0), Infinity);
    assert.equal(vm.exports[3](-0), -Infinity);
    assert.ok(Object.is(vm.exports[3](-Infinity), -0));
    assert.equal(vm.exports[4](2147483647), 2147483648);
    assert.equal(vm.exports[4](0.5), 1.5);
    assert.equal(vm.exports[5](3), 1.5);
    assert.ok(Object.is(vm.exports[5](-0), -0));
    assert.ok(Number.isNaN(vm.exports[6]()));
    assert.equal(vm.exports[7](), '😀');
    assert.equal(vm.exports[8](), 'a\u0000b');
    assert.equal(vm.exports[9](), '');
    assert.equal(vm.exports[10](), '__proto__');
    assert.equal(vm.exports[11](), 'length');
    assert.equal(vm.exports[12](), 'Ünïcödé 日本語');
    assert.equal(vm.exports[13](), 2147483648);
    assert.equal(vm.exports[14](), -2147483649);
    assert.equal(vm.exports[15](), 9007199254740992);
    assert.equal(vm.exports[16](), 0.30000000000000004);
    assert.equal(vm.exports[17](), undefined);
    assert.equal(vm.exports[18](), null);
    assert.equal(vm.exports[19](), true);
    assert.equal(vm.exports[20](), false);
  });
});

// ---------------------------------------------------------------------------
// The guest's %, ** and number-to-string give Node's results

describe('guest arithmetic and number formatting match Node', () => {
  const vm = Microvium.restore(compile(`
    vmExport(1, (a, b) => a % b);
    vmExport(2, (a, b) => a ** b);
    vmExport(3, (x) => '' + x);
    vmExport(4, () => '' + (0.1 + 0.2));
    vmExport(5, () => ['' + 1e21, '' + 1.5e-7, '' + 123.456, '' + -0.5, '' + (-0), '' + (1 / 3),
      '' + (2 ** 53), '' + (0 / 0), '' + (-1 / 0), '' + (1 / 0), '' + 5e-324, '' + 1e-7, '' + 0.000001,
      '' + 1e20, '' + (2 ** 31), '' + (-(2 ** 31)), '' + 4294967295, 'x=' + 1.5, '' + (100 / 3),
      '' + (2 ** 0.5), '' + 1.7976931348623157e308, '' + 123e-20, '' + 0.1, '' + 100, '' + -1]);
  `));
  const mod = vm.exports[1];
  const pow = vm.exports[2];
  const str = vm.exports[3];

  test("'' + (0.1 + 0.2) in the guest is '0.30000000000000004'", () => {
    assert.equal(vm.exports[4](), '0.30000000000000004');
  });

  test('number-to-string of literals computed in the guest', () => {
    const expected = ['' + 1e21, '' + 1.5e-7, '' + 123.456, '' + -0.5, '' + (-0), '' + (1 / 3),
      '' + (2 ** 53), '' + (0 / 0), '' + (-1 / 0), '' + (1 / 0), '' + 5e-324, '' + 1e-7, '' + 0.000001,
      '' + 1e20, '' + (2 ** 31), '' + (-(2 ** 31)), '' + 4294967295, 'x=' + 1.5, '' + (100 / 3),
      '' + (2 ** 0.5), '' + 1.7976931348623157e308, '' + 123e-20, '' + 0.1, '' + 100, '' + -1];
    assert.deepEqual(Array.from(vm.exports[5]()), expected);
    assert.equal(expected[0], '1e+21'); // sanity of the expectations
  });

  test('number-to-string of selected values passed in', () => {
    const values = [0.1 + 0.2, 1e21, 1e-7, 1.5e-7, 123.456, -0.5, -0, 0, 1 / 3, 2 / 3, 2 ** 53, 2 ** 53 + 2,
      1e20, 123456789012345680000, 5e-324, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON,
      NaN, Infinity, -Infinity, 0.000001, 0.0000001, 1.2e-10, 1234.5678, -98765.4321, 100, -1, 2147483648,
      4.35, 0.3, 1.005, 9.95, 1e15 + 0.3, 123456789.12345679, 0.1 * 3, 1.1 * 1.1];
    for (const x of values) assert.equal(str(x), String(x), `'' + ${describeValue(x)}`);
  });

  test('number-to-string of numbers near 2^48 that need 17 significant digits', () => {
    // Found by the random test below: both digit strings parse back to the
    // same double, but ECMAScript picks the one closest to the exact value.
    for (const x of [230107665401933.62, -1866972774167040.2, 259273410197009.12, 1628370288120755.2]) {
      assert.equal(str(x), String(x), `'' + ${x}`);
    }
  });

  test('number-to-string of every power of two (next to one, the gap below is half the gap above)', () => {
    // Found by the differential tester: 2 ** -24 came out as a string that
    // reads back as the double below it.
    const bad = [];
    for (let e = -1074; e < 1024; e++) {
      for (const x of [2 ** e, -(2 ** e)]) if (str(x) !== String(x)) bad.push(`${String(x)} -> ${str(x)}`);
    }
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} differ`);
  });

  test('number-to-string matches String(x) for 5000 random doubles', () => {
    const rnd = prng(12345);
    const bad = [];
    const u32 = new Uint32Array(2);
    const f64 = new Float64Array(u32.buffer);
    for (let i = 0; i < 5000; i++) {
      let x;
      switch (i % 3) {
        case 0: u32[0] = rnd() * 2 ** 32; u32[1] = rnd() * 2 ** 32; x = f64[0]; break;
        case 1: x = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 44 - 22); break;
        default: x = Math.round((rnd() - 0.5) * 10 ** Math.floor(rnd() * 22)) / 10 ** Math.floor(rnd() * 6);
      }
      const r = str(x);
      if (r !== String(x)) bad.push(`${String(x)} -> ${r}`);
    }
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of 5000 differ`);
  });

  test('guest multiplication that yields -0 matches Node (0 * -1, -5 * 0)', () => {
    const m = Microvium.restore(compile('vmExport(1, (a, b) => a * b); vmExport(2, (x) => -x); vmExport(3, (a, b) => a / b);'));
    const cases = [[0, -1], [-5, 0], [0, -5], [-0, 5], [-0.5, 0], [0, -0.5], [-1, 0]];
    const bad = [];
    for (const [a, b] of cases) {
      const r = m.exports[1](a, b);
      if (!Object.is(r, a * b)) bad.push(`${describeValue(a)} * ${describeValue(b)} = ${describeValue(r)}, Node ${describeValue(a * b)}`);
    }
    assert.deepEqual(bad, []);
    assert.ok(Object.is(m.exports[2](0), -0), '-x for x = 0');
    assert.ok(Object.is(m.exports[3](0, -5), -0), '0 / -5');
  });

  test('% on integers matches Node, including -0 results', () => {
    const ints = [0, -0, 1, -1, 2, -2, 3, -3, 7, -7, 10, -100, 255, 8191, -8192, 2 ** 31 - 1, -(2 ** 31) + 1, 2 ** 31, 2 ** 32, -(2 ** 32)];
    const bad = [];
    for (const a of ints) {
      for (const b of ints) {
        const r = mod(a, b);
        if (!Object.is(r, a % b)) bad.push(`${describeValue(a)} % ${describeValue(b)} = ${describeValue(r)}, Node: ${describeValue(a % b)}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  test('% with fractions, infinities and NaN matches Node', () => {
    const cases = [[5.5, 2], [-5.5, 2], [5.5, -2], [0.3, 0.1], [1e300, 3], [7.25, -2], [Infinity, 2], [-Infinity, 2],
      [3, Infinity], [-3, -Infinity], [NaN, 1], [1, NaN], [1, 0], [-1, 0], [0, 0], [-0, 5], [-0.5, 0.5], [-4.5, 1.5]];
    for (const [a, b] of cases) {
      const r = mod(a, b);
      assert.ok(Object.is(r, a % b), `${describeValue(a)} % ${describeValue(b)} gave ${describeValue(r)}, Node ${describeValue(a % b)}`);
    }
  });

  test('% matches Node for 3000 random operands', () => {
    const rnd = prng(777);
    const bad = [];
    for (let i = 0; i < 3000; i++) {
      const a = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 30 - 10);
      const b = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 10 - 5);
      const ai = Math.round(a);
      const bi = Math.round(b) || 1;
      for (const [x, y] of [[a, b], [ai, bi]]) {
        const r = mod(x, y);
        if (!Object.is(r, x % y)) bad.push(`${describeValue(x)} % ${describeValue(y)} = ${describeValue(r)}, Node ${describeValue(x % y)}`);
      }
    }
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} differ`);
  });

  test('-2147483648 % -1 is -0 and does not crash the process (SIGFPE in C)', () => {
    isolated(`
      const vm = Microvium.restore(compile('vmExport(1, (a, b) => a % b); vmExport(2, () => { const a = -2147483648; const b = -1; return a % b; });'));
      assert.ok(Object.is(vm.exports[1](-2147483648, -1), -0));
      assert.ok(Object.is(vm.exports[2](), -0));
      console.log('ok');
    `);
  });

  test('** on simple operands matches Node', () => {
    const cases = [[2, 10], [2, 0.5], [2, -1], [-2, 3], [-2, 2], [-8, 1 / 3], [0, -1], [-0, -1], [-0, 3], [-0, 2],
      [NaN, 0], [1, Infinity], [1, NaN], [10, 308], [10, 309], [10, -5], [2, 53], [2, 1023], [2, -1074], [2, -1075],
      [3, 40], [1.1, 2], [4, 0.5], [0, 0], [Infinity, -1], [-Infinity, 3], [-Infinity, 2], [0.5, -1074], [7, 0]];
    for (const [a, b] of cases) {
      const r = pow(a, b);
      assert.ok(Object.is(r, a ** b), `${describeValue(a)} ** ${describeValue(b)} gave ${describeValue(r)}, Node ${describeValue(a ** b)}`);
    }
  });

  test('** matches Node for 3000 random operands', () => {
    const rnd = prng(4242);
    const bad = [];
    for (let i = 0; i < 3000; i++) {
      const a = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 30 - 15);
      const p = Math.floor((rnd() - 0.5) * 40);
      const q = rnd() * 4 - 2;
      for (const [x, y] of [[a, p], [Math.abs(a), q]]) {
        const r = pow(x, y);
        if (!Object.is(r, x ** y)) bad.push(`${x} ** ${y} = ${r}, Node ${x ** y}`);
      }
    }
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of 6000 differ`);
  });
});

// ---------------------------------------------------------------------------
// Errors

describe('errors', () => {
  const snapshot = compile(`
    const h = vmImport(1);
    class GuestError { constructor(message) { this.message = message; this.kind = 'guest'; } }
    vmExport(1, () => { throw { message: 'boom', code: 7 }; });
    vmExport(2, (x) => { throw x; });
    vmExport(3, () => { throw new GuestError('from a class'); });
    vmExport(4, () => { try { h(); return 'not thrown'; } catch (e) { return e; } });
    vmExport(5, () => { try { h(); return 'not thrown'; } catch (e) { return 'caught: ' + e.message; } });
    vmExport(6, () => h());
    vmExport(7, () => { const r = h(); return 'after ' + r; });
    vmExport(8, (x) => x());
    vmExport(9, (i) => { const a = []; a[i] = 1; return a; });
    let counter = 0;
    vmExport(10, () => { counter++; h(); counter++; return counter; });
    vmExport(11, () => counter);
  `);

  test('a guest throw of an object reaches the host with the thrown value (e.message works)', () => {
    const vm = Microvium.restore(snapshot, { 1: () => 0 });
    let caught;
    assert.throws(() => vm.exports[1](), (e) => { caught = e; return true; });
    assert.equal(typeof caught, 'object');
    assert.equal(caught.message, 'boom');
    assert.equal(caught.code, 7);
    assert.equal(caught instanceof MicroviumError, false, 'a guest throw is not an engine failure');
    let c2;
    assert.throws(() => vm.exports[3](), (e) => { c2 = e; return true; });
    assert.equal(c2.message, 'from a class');
    assert.equal(c2.kind, 'guest');
  });

  test('a guest throw of a primitive reaches the host as that primitive', () => {
    const vm = Microvium.restore(snapshot, { 1: () => 0 });
    for (const v of ['a string', '', 42, -0, NaN, 0, undefined, null, true, false, '😀']) {
      let caught = Symbol('none');
      try { vm.exports[2](v); } catch (e) { caught = e; }
      assert.ok(Object.is(caught, v), `threw ${describeValue(v)}, host got ${String(caught)}`);
    }
    assert.equal(vm.exports[11](), 0, 'the VM is still usable');
  });

  test('a host Error thrown in an import is catchable in the guest (message is copied)', () => {
    const vm = Microvium.restore(snapshot, { 1: () => { throw new RangeError('host boom'); } });
    assert.equal(vm.exports[5](), 'caught: host boom');
    const e = vm.exports[4]();
    assert.equal(e.message, 'host boom');
  });

  test('a host exception uncaught in the guest reaches the host caller as the same object', () => {
    const err = new TypeError('host failure');
    const vm = Microvium.restore(snapshot, { 1: () => { throw err; } });
    let caught;
    assert.throws(() => vm.exports[6](), (e) => { caught = e; return true; });
    assert.equal(caught, err, 'the very same error object');
    assert.throws(() => vm.exports[7](), (e) => e === err);
    // The guest code after the failing call did not run.
    assert.throws(() => vm.exports[10](), (e) => e === err);
    assert.equal(vm.exports[11](), 1);
    const obj = { custom: true };
    const vm2 = Microvium.restore(snapshot, { 1: () => { throw obj; } });
    assert.throws(() => vm2.exports[6](), (e) => e === obj);
  });

  test('a host exception that is a primitive: catchable in the guest, and reaches the host as itself', () => {
    for (const v of ['plain string', 42, undefined, null, false]) {
      const vm = Microvium.restore(snapshot, { 1: () => { throw v; } });
      let caught = Symbol('none');
      try { vm.exports[6](); } catch (e) { caught = e; }
      assert.ok(Object.is(caught, v), `host threw ${describeValue(v)}, caller got ${caught && caught.message ? 'Error: ' + caught.message : String(caught)}`);
      const inGuest = vm.exports[4]();
      assert.ok(Object.is(inGuest, v), `host threw ${describeValue(v)}, guest caught ${describeValue(inGuest)}`);
    }
  });

  test('MicroviumError is exported, subclasses Error and carries code and errno', () => {
    assert.equal(typeof MicroviumError, 'function');
    assert.equal(Microvium.MicroviumError, MicroviumError);
    assert.ok(MicroviumError.prototype instanceof Error);
    const vm = Microvium.restore(snapshot, { 1: () => 0 });
    const e = throwsMvm(() => vm.exports[8](5), 'MVM_E_TYPE_ERROR_TARGET_IS_NOT_CALLABLE');
    assert.equal(e.errno, 40);
    assert.equal(e.name, 'MicroviumError');
    assert.equal(typeof e.stack, 'string');
    assert.equal(String(e), 'MicroviumError: ' + engineMessage('MVM_E_TYPE_ERROR_TARGET_IS_NOT_CALLABLE'));
    // An array has no property "-1" (c/patches/property-keys.patch).
    const r = throwsMvm(() => vm.exports[9](-1), 'MVM_E_INVALID_ARRAY_INDEX');
    assert.equal(r.errno, 43);
    // The VM survives ordinary engine errors.
    assert.equal(vm.exports[11](), 0);
  });

  test('the engine error table is the one from microvium.h', () => {
    assert.equal(ERRNO.MVM_E_TYPE_ERROR, 12);
    assert.equal(ERRNO.MVM_E_BYTECODE_CRC_FAIL, 27);
    assert.equal(ERRNO.MVM_E_OUT_OF_MEMORY, 33);
    assert.equal(ERRNO.MVM_E_TOO_MANY_ARGUMENTS, 34);
    assert.equal(ERRNO.MVM_E_WRONG_BYTECODE_VERSION, 49);
  });
});

// ---------------------------------------------------------------------------
// Bad input

describe('bad input gets a clear error, never a crash', () => {
  const snapshot = compile(BASIC);
  const imports = { 7: (a, b) => a * b };

  test('a snapshot that is not bytes is a TypeError', () => {
    const notBytes = ['a string', 123, null, undefined, true, {}, { length: 3 }, () => 1, Symbol('s'), 10n,
      new Uint16Array(snapshot), new Float64Array(4), new Map()];
    for (const s of notBytes) {
      assert.throws(() => Microvium.restore(s, imports), (e) => e instanceof TypeError && /snapshot/i.test(e.message),
        `restore(${typeof s})`);
      assert.throws(() => new VM(s, imports), TypeError);
    }
    for (const arr of [[1, 2, 300], [1, -1], [0.5], ['8'], [null], [1, , 3]]) { // eslint-disable-line no-sparse-arrays
      assert.throws(() => Microvium.restore(arr, imports), (e) => e instanceof TypeError && /byte/i.test(e.message), JSON.stringify(arr));
    }
  });

  test('an empty snapshot', () => {
    for (const empty of [new Uint8Array(0), [], new ArrayBuffer(0), Buffer.alloc(0)]) {
      throwsMvm(() => Microvium.restore(empty, imports), 'MVM_E_INVALID_BYTECODE', /empty/i);
    }
  });

  test('every truncation of a valid snapshot', () => {
    for (let n = 1; n < snapshot.length; n++) {
      throwsMvm(() => Microvium.restore(snapshot.subarray(0, n), imports), 'MVM_E_INVALID_BYTECODE');
    }
  });

  test('a snapshot with trailing bytes', () => {
    const longer = new Uint8Array(snapshot.length + 10);
    longer.set(snapshot);
    throwsMvm(() => Microvium.restore(longer, imports), 'MVM_E_INVALID_BYTECODE');
  });

  test('an odd-sized snapshot, with its size field and CRC made consistent, is rejected', () => {
    // The engine would take the odd last byte into its heap and start the
    // next heap bucket at an odd offset: pointers it encodes there decode as
    // integers (a fuzzer input that way wrote past the snapshot).
    const odd = new Uint8Array(snapshot.length + 1);
    odd.set(snapshot);
    odd[4] = odd.length & 255;
    odd[5] = odd.length >> 8;
    const c = crc16(odd.subarray(8));
    odd[6] = c & 255;
    odd[7] = c >> 8;
    throwsMvm(() => Microvium.restore(odd, imports), 'MVM_E_INVALID_BYTECODE', /odd/);
  });

  test('a corrupted byte gives MVM_E_BYTECODE_CRC_FAIL, at every position the CRC covers', () => {
    for (let i = 6; i < snapshot.length; i++) {
      for (const flip of [0x01, 0x80, 0xFF]) {
        const bad = snapshot.slice();
        bad[i] ^= flip;
        throwsMvm(() => Microvium.restore(bad, imports), 'MVM_E_BYTECODE_CRC_FAIL', undefined);
      }
    }
  });

  test('a changed version byte: the message names both versions', () => {
    assert.equal(snapshot[0], 8, 'byte 0 is the bytecode (engine major) version');
    for (const v of [7, 9, 0, 255]) {
      const bad = snapshot.slice();
      bad[0] = v;
      let e;
      assert.throws(() => Microvium.restore(bad, imports), (x) => { e = x; return true; });
      assert.ok(e instanceof MicroviumError && e.code === 'MVM_E_WRONG_BYTECODE_VERSION' && e.errno === 49, String(e));
      // Worded as the WebAssembly runtime words it.
      assert.equal(e.message, `Bytecode is targeting a different engine version. Engine version is ${Microvium.engineVersion} but bytecode requires ^${v}.0.0.`);
      assert.ok(e.message.includes(Microvium.engineVersion), `names the engine version: ${e.message}`);
    }
  });

  test('a snapshot that needs a later minor engine version names both versions', () => {
    const bad = snapshot.slice();
    bad[2] = 9; // requiredEngineVersion (minor), not covered by the CRC
    let caught;
    assert.throws(() => Microvium.restore(bad, imports), (e) => { caught = e; return true; });
    assert.ok(caught instanceof MicroviumError, caught.message);
    assert.ok(['MVM_E_REQUIRES_LATER_ENGINE', 'MVM_E_WRONG_BYTECODE_VERSION'].includes(caught.code), caught.code);
    assert.equal(caught.errno, ERRNO[caught.code]);
    assert.ok(caught.message.includes(Microvium.engineVersion), caught.message);
    assert.match(caught.message, /8\.9\b/);
  });

  test('random bytes (1000 samples, in a child process)', () => {
    const r = isolated(`
      let s = 99;
      const rnd = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 0x100000000; };
      const codes = {};
      for (let i = 0; i < 1000; i++) {
        const len = Math.floor(rnd() * 300);
        const b = new Uint8Array(len).map(() => rnd() * 256);
        if (i % 2 && len >= 8) { b[0] = 8; b[1] = 28; b[2] = 0; b[3] = 0; b[4] = len & 255; b[5] = len >> 8; }
        try { Microvium.restore(b, {}); codes.restored = (codes.restored || 0) + 1; }
        catch (e) {
          assert.ok(e instanceof Microvium.MicroviumError, e.message);
          assert.match(e.message, /^(Microvium Error: MVM_E_[A-Z0-9_]+ \\(\\d+\\)|Bytecode is targeting a different engine version)/);
          codes[e.code] = (codes[e.code] || 0) + 1;
        }
      }
      console.log(JSON.stringify(codes));
    `);
    const codes = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(codes.restored, undefined, 'no random snapshot restores');
    assert.ok(codes.MVM_E_BYTECODE_CRC_FAIL > 0);
  });

  test('hostile snapshots with a valid CRC (each byte changed, CRC fixed) do not crash the process', () => {
    // The engine only checks the CRC; a snapshot whose CRC is right but whose
    // content is wrong must still give an error, never a crash.
    const src = `const h = vmImport(1); let o = { a: 1, b: [1, 2, 3], s: 'str' };
      vmExport(1, (x) => { o.a = x; return h(o.a) + o.b[1]; }); vmExport(2, () => o.s);`;
    const r = runIsolated(`
      const crc16 = ${crc16.toString()};
      const s = compile(${JSON.stringify(src)});
      for (let pos = 8; pos < s.length; pos++) {
        for (const val of [0, 1, 0x80, 0xFF]) {
          const v = s.slice();
          if (v[pos] === val) continue;
          v[pos] = val;
          const c = crc16(v.subarray(8)); v[6] = c & 255; v[7] = c >> 8;
          process.stdout.write('pos ' + pos + ' val ' + val + '\\n');
          let vm;
          try { vm = Microvium.restore(v, { 1: (x) => x }); } catch (e) { assert.ok(e instanceof Error); continue; }
          try { if (typeof vm.exports[1] === 'function') vm.exports[1](3); } catch (e) { assert.ok(e !== undefined); }
          try { if (typeof vm.exports[2] === 'function') vm.exports[2](); } catch (e) { assert.ok(e !== undefined); }
        }
      }
      console.log('done');
    `);
    const last = r.stdout.trim().split('\n').pop();
    assert.equal(r.signal, null, `child died with ${r.signal} at mutation "${last}"\n${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(last, 'done');
  });

  test('a missing import: the message names the id, worded as the WebAssembly runtime words it', () => {
    const s = compile('const f = vmImport(4321); vmExport(1, () => f());');
    for (const imports of [{}, undefined, null, { 4320: () => 0, 4322: () => 0 }]) {
      for (const make of [() => Microvium.restore(s, imports), () => new VM(s, imports)]) {
        assert.throws(make, (e) => e instanceof MicroviumError && e.code === 'MVM_E_UNRESOLVED_IMPORT' && e.errno === 9 &&
          e.message === 'Import 4321 is required by the VM but not provided by the host');
      }
    }
    // BASIC imports 7.
    assert.throws(() => Microvium.restore(snapshot, {}), (e) => e.code === 'MVM_E_UNRESOLVED_IMPORT' && /\b7\b/.test(e.message));
  });

  test('imports that the snapshot does not need are allowed', () => {
    const vm = Microvium.restore(snapshot, { ...imports, 8: () => 1, 0: () => 2, 65535: () => 3 });
    assert.equal(vm.exports[3](2), 6);
  });

  test('an import id outside 0..0xFFFF is a RangeError naming the id', () => {
    for (const id of ['65536', '70000', '-1', '1.5', 'abc', '1e3', '01', '4294967296']) {
      assert.throws(() => Microvium.restore(snapshot, { ...imports, [id]: () => 0 }),
        (e) => e instanceof RangeError && e.message.includes(id), `id ${id}`);
    }
  });

  test('an import that is not a function is a TypeError naming the id', () => {
    for (const bad of [3, 'f', null, undefined, {}, [], true]) {
      assert.throws(() => Microvium.restore(snapshot, { 7: bad }),
        (e) => e instanceof TypeError && /\b7\b/.test(e.message) && /function/.test(e.message), `import ${typeof bad}`);
    }
    assert.throws(() => Microvium.restore(snapshot, 'not an object'), TypeError);
    assert.throws(() => Microvium.restore(snapshot, 42), TypeError);
  });

  test('more arguments than the engine allows: MVM_E_TOO_MANY_ARGUMENTS, nothing changes', () => {
    const vm = Microvium.restore(compile(`
      let calls = 0;
      vmExport(1, (a, b, c) => { calls++; return a + b + c; });
      vmExport(2, () => calls);
    `));
    const f = vm.exports[1];
    assert.equal(f(...Array(126).fill(1)), 3, '126 arguments are allowed');
    for (const n of [127, 130, 255, 256, 1000]) {
      const e = throwsMvm(() => f(...Array(n).fill(1)), 'MVM_E_TOO_MANY_ARGUMENTS');
      assert.match(e.detail, new RegExp(`\\b${n}\\b`));
      assert.throws(() => f.apply(null, Array(n).fill(0)), (x) => x instanceof MicroviumError && x.code === 'MVM_E_TOO_MANY_ARGUMENTS');
    }
    assert.equal(vm.exports[2](), 1, 'the rejected calls did not run');
    assert.equal(f(1, 2, 3), 6);
  });

  test('a value that cannot cross is a TypeError naming its type; nothing in the guest changes', () => {
    const s = compile(`
      const h = vmImport(1);
      let calls = 0;
      vmExport(1, (x) => { calls++; return typeof x; });
      vmExport(2, () => calls);
      vmExport(3, () => { calls++; return h(); });
    `);
    let ret;
    const vm = Microvium.restore(s, { 1: () => ret });
    const other = Microvium.restore(s, { 1: () => ret });
    const cases = [
      [Symbol('s'), /symbol/i], [Symbol.iterator, /symbol/i], [10n, /bigint/i], [new Map(), /Map/],
      [new Set(), /Set/], [new WeakMap(), /WeakMap/], [Promise.resolve(1), /Promise/],
      [new Float64Array(2), /Float64Array/], [new Int32Array(2), /Int32Array/], [() => 1, /function/i],
      [other.exports[1], /another|other|different/i],
    ];
    for (const [value, re] of cases) {
      assert.throws(() => vm.exports[1](value), (e) => e instanceof TypeError && re.test(e.message),
        `argument ${String(value)}`);
      assert.throws(() => vm.exports[1](1, value), (e) => e instanceof TypeError && re.test(e.message));
    }
    assert.equal(vm.exports[2](), 0, 'the guest was not called');
    for (const [value, re] of cases.slice(0, 10)) {
      ret = value;
      assert.throws(() => vm.exports[3](), (e) => e instanceof TypeError && re.test(e.message), `import result ${String(value)}`);
    }
    ret = 5;
    assert.equal(vm.exports[3](), 5, 'the VM is still usable');
  });
});

// ---------------------------------------------------------------------------
// Fatal errors are contained

describe('fatal errors are contained', () => {
  const OOM = `
    const h = vmImport(1);
    vmExport(1, () => { let head = undefined; let n = 0; while (true) { head = { next: head, a: n, b: n }; n++; } });
    vmExport(2, (x) => x + 1);
    vmExport(3, () => { const r = h(); return r + 1; });
    vmExport(4, () => { const a = []; let n = 0; while (true) { a[n] = [n, n]; n++; } });
    vmExport(5, 'five');
  `;

  test('exhausting the guest heap: MVM_E_OUT_OF_MEMORY, then the VM is unusable and others keep working', () => {
    isolated(`
      const s = compile(${JSON.stringify(OOM)});
      const before = Microvium.restore(s, { 1: () => 0 });
      const vm = Microvium.restore(s, { 1: () => 0 });
      assert.equal(vm.exports[2](1), 2);
      const f2 = vm.exports[2];
      let e;
      assert.throws(() => vm.exports[1](), (x) => { e = x; return true; });
      assert.ok(e instanceof Microvium.MicroviumError, e && e.message);
      assert.equal(e.code, 'MVM_E_OUT_OF_MEMORY');
      assert.equal(e.errno, 33);
      assert.match(e.message, /^Microvium Error: MVM_E_OUT_OF_MEMORY \\(33\\): /);
      // Every later use throws a clear error.
      const uses = [
        () => f2(1), () => vm.exports[1](), () => vm.exports[5], () => vm.createSnapshot(),
        () => vm.getMemoryStats(), () => vm.runGC(), () => vm.exports[2](1),
      ];
      for (const use of uses) {
        assert.throws(use, (x) => x instanceof Microvium.MicroviumError && /fatal/i.test(x.message) && /unusable|no longer/i.test(x.message),
          String(use));
      }
      // Other VMs, restored before and after, keep working.
      assert.equal(before.exports[2](41), 42);
      const after = Microvium.restore(s, { 1: () => 0 });
      assert.equal(after.exports[2](1), 2);
      assert.equal(after.exports[5], 'five');
      console.log('ok');
    `);
  });

  test('an array that grows without bound stops at the engine limit, and the VM goes on', () => {
    // Not fatal since c/patches/array-growth-limit.patch: the write past
    // 2047 items fails before it changes anything.
    isolated(`
      const s = compile(${JSON.stringify(OOM)});
      const vm = Microvium.restore(s, { 1: () => 0 });
      let e;
      assert.throws(() => vm.exports[4](), (x) => { e = x; return true; });
      assert.ok(e instanceof Microvium.MicroviumError, e && e.message);
      assert.equal(e.code, 'MVM_E_ARRAY_TOO_LONG');
      assert.equal(vm.exports[2](1), 2);
      assert.equal(Microvium.restore(s, { 1: () => 0 }).exports[2](2), 3);
      console.log('ok');
    `);
  });

  test("a fatal error in a VM called from inside another VM's import leaves the outer VM working", () => {
    isolated(`
      const s = compile(${JSON.stringify(OOM)});
      const A = Microvium.restore(s, { 1: () => 0 });
      const B = Microvium.restore(s, { 1: () => {
        try { A.exports[1](); return -1; } catch (e) { return e.code === 'MVM_E_OUT_OF_MEMORY' ? 100 : -2; }
      } });
      assert.equal(B.exports[3](), 101);
      assert.equal(B.exports[2](1), 2);
      assert.throws(() => A.exports[2](1), (x) => x instanceof Microvium.MicroviumError && /fatal/i.test(x.message));
      console.log('ok');
    `);
  });

  test('a fatal error in a nested call of the same VM fails the outer call clearly', () => {
    isolated(`
      const s = compile(${JSON.stringify(OOM)});
      // The import lets the fatal error propagate.
      const vm = Microvium.restore(s, { 1: () => vm.exports[1]() });
      assert.throws(() => vm.exports[3](), (x) => x instanceof Microvium.MicroviumError && x.code === 'MVM_E_OUT_OF_MEMORY');
      assert.throws(() => vm.exports[2](1), (x) => x instanceof Microvium.MicroviumError && /fatal/i.test(x.message));
      console.log('ok');
    `);
  });

  test('a fatal error in a nested call that the host swallows still fails the outer call with a fatal-error message', () => {
    isolated(`
      const s = compile(${JSON.stringify(OOM)});
      let inner;
      const vm = Microvium.restore(s, { 1: () => { try { vm.exports[1](); } catch (e) { inner = e; } return 5; } });
      let outer;
      assert.throws(() => vm.exports[3](), (x) => { outer = x; return true; });
      assert.equal(inner.code, 'MVM_E_OUT_OF_MEMORY');
      assert.ok(outer instanceof Error);
      assert.match(outer.message, /fatal/i, 'the outer call must say that the VM hit a fatal error (got: ' + outer.message + ')');
      assert.throws(() => vm.exports[2](1), (x) => x instanceof Microvium.MicroviumError && /fatal/i.test(x.message));
      console.log('ok');
    `);
  });
});

// ---------------------------------------------------------------------------
// Re-entrancy

describe('re-entrancy', () => {
  const snapshot = compile(`
    const h = vmImport(1);
    let counter = 0;
    vmExport(1, (n) => h(n) + 1);
    vmExport(2, (x) => x * 2);
    vmExport(3, (n) => n <= 0 ? 0 : h(n - 1) + 1);
    vmExport(4, () => { counter++; return counter; });
    vmExport(5, () => { const before = counter; h(); return counter - before; });
    vmExport(6, (x) => { const o = { v: x, s: 'k' + x, arr: [x, x + 1] }; h(x); return o.v + ':' + o.s + ':' + o.arr[1]; });
    vmExport(7, (n) => { let i = 0; let keep = undefined; while (i < n) { keep = { i: i, s: 'str' + i, prev: i % 10 === 0 ? undefined : keep }; i++; } return i; });
  `);

  test('an import calls back into the same VM, and guest state is shared', () => {
    const vm = Microvium.restore(snapshot, { 1: () => { vm.exports[4](); vm.exports[4](); } });
    assert.equal(vm.exports[5](), 2);
    assert.equal(vm.exports[4](), 3);
  });

  test('guest locals survive a nested call that allocates (and collects) a lot', () => {
    const vm = Microvium.restore(snapshot, { 1: (x) => { vm.exports[7](2000); if (gc) gc(); return x; } });
    assert.equal(vm.exports[6](5), '5:k5:6');
    assert.equal(vm.exports[6](-1.5), '-1.5:k-1.5:-0.5');
  });

  test('an import calls into another VM, nested, in both directions', () => {
    let vmA;
    let vmB;
    vmA = Microvium.restore(snapshot, { 1: (n) => vmA.exports[2](n) + vmB.exports[2](n) });
    vmB = Microvium.restore(snapshot, { 1: (n) => vmA.exports[3](n) });
    assert.equal(vmA.exports[1](5), 21);
    // B(10) -> A.3(9) -> A's import(8) = A.2(8) + B.2(8) = 32 -> +1 -> +1
    assert.equal(vmB.exports[3](10), 34);
  });

  test('ping-pong between two VMs, 20 levels deep, returns the right value', () => {
    let vmA;
    let vmB;
    vmA = Microvium.restore(snapshot, { 1: (n) => vmB.exports[3](n) });
    vmB = Microvium.restore(snapshot, { 1: (n) => vmA.exports[3](n) });
    assert.equal(vmA.exports[3](20), 20);
    assert.equal(vmB.exports[3](15), 15);
  });

  test('runaway recursion guest -> host -> same guest ends in a clear error, not a crash', () => {
    isolated(`
      const s = compile(${JSON.stringify(`
        const h = vmImport(1);
        vmExport(1, (n) => h(n) + 1);
        vmExport(2, (x) => x * 2);
        vmExport(3, (n) => n <= 0 ? 0 : h(n - 1) + 1);
      `)});
      const vm = Microvium.restore(s, { 1: (n) => vm.exports[1](n) });
      let e;
      assert.throws(() => vm.exports[1](1), (x) => { e = x; return true; });
      assert.ok(e instanceof Microvium.MicroviumError, e && e.message);
      assert.equal(e.code, 'MVM_E_STACK_OVERFLOW');
      assert.equal(e.errno, 8);
      assert.equal(e.message, 'Microvium Error: MVM_E_STACK_OVERFLOW (8)');
      assert.match(e.detail, /nest|deep|depth/i);
      // The VM is still usable, and a bounded recursion still works.
      assert.equal(vm.exports[2](21), 42);
      const vm2 = Microvium.restore(s, { 1: (n) => vm2.exports[3](n) });
      assert.equal(vm2.exports[3](30), 30);
      assert.throws(() => vm2.exports[3](1e6), (x) => x instanceof Microvium.MicroviumError && x.code === 'MVM_E_STACK_OVERFLOW');
      assert.equal(vm2.exports[3](30), 30);
      console.log('ok');
    `);
  });

  test('runaway recursion ping-ponging between two VMs ends in a clear error, not a crash', () => {
    isolated(`
      const s = compile(${JSON.stringify('const h = vmImport(1); vmExport(3, (n) => n <= 0 ? 0 : h(n - 1) + 1);')});
      let a, b;
      a = Microvium.restore(s, { 1: (n) => b.exports[3](n) });
      b = Microvium.restore(s, { 1: (n) => a.exports[3](n) });
      assert.throws(() => a.exports[3](100000), (x) => x instanceof Microvium.MicroviumError && x.code === 'MVM_E_STACK_OVERFLOW');
      assert.equal(a.exports[3](10), 10);
      assert.equal(b.exports[3](10), 10);
      console.log('ok');
    `);
  });

  test('runaway recursion where every level catches the error still terminates, not a crash', () => {
    isolated(`
      const s = compile('const h = vmImport(1); vmExport(1, (n) => h(n) + 1); vmExport(2, (x) => x * 2);');
      let caught = 0;
      const vm = Microvium.restore(s, { 1: (n) => { try { return vm.exports[1](n); } catch (e) { caught++; return 0; } } });
      const depth = vm.exports[1](1);
      assert.ok(caught >= 1);
      assert.ok(depth >= 20, 'at least 20 levels of nesting are allowed, got ' + depth);
      assert.equal(vm.exports[2](4), 8);
      console.log('ok');
    `);
  });

  test('runaway recursion purely inside the guest is a stack-overflow error, and the VM survives', () => {
    isolated(`
      const s = compile('vmExport(1, () => { const r = (n) => r(n + 1) + 1; return r(0); }); vmExport(2, (x) => x + 1);');
      const vm = Microvium.restore(s);
      assert.throws(() => vm.exports[1](), (x) => x instanceof Microvium.MicroviumError && x.code === 'MVM_E_STACK_OVERFLOW');
      assert.equal(vm.exports[2](1), 2);
      console.log('ok');
    `);
  });
});

test('restore accepts the microvium compiler\'s Snapshot object as well as its bytes', () => {
  const mv = require('microvium/dist/lib');
  const compiler = mv.Microvium.create();
  mv.addDefaultGlobals(compiler);
  compiler.evaluateModule({ sourceText: 'vmExport(1, (a) => a * 3);' });
  const snapshot = compiler.createSnapshot();
  assert.equal(Microvium.restore(snapshot).exports[1](7), 21);
  assert.equal(new Microvium.VM(snapshot.data).exports[1](2), 6);
  assert.throws(() => Microvium.restore({ data: 'not bytes' }), TypeError);
});
