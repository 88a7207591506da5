'use strict';
// The membrane: guest objects, arrays, functions, classes and Uint8Arrays
// as live JS values, and host values going in.
//
// Run with: node --expose-gc --test __test__/membrane.test.js
//
// Each `describe` block is one kind of value or concern. Guest scripts are
// compiled at test time (helpers.compile). Notes on the guest language used
// here: no object-method shorthand, no `extends`, no `instanceof`, no
// `for (;;)`; plain guest objects have no prototype inside the guest.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const util = require('node:util');
const vmModule = require('node:vm');
const Microvium = require('..');
const { compile, runIsolated, tick, settle } = require('./helpers');

const internals = Microvium.__internals;
const liveHandles = (vm) => internals.liveHandles(vm);

function restore(source, imports = {}) {
  return Microvium.restore(compile(source), imports);
}


function isMicroviumError(code) {
  return (e) => {
    assert.ok(e instanceof Microvium.MicroviumError, `expected a MicroviumError, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    assert.ok(e instanceof Error);
    assert.equal(e.code, code);
    return true;
  };
}

/** A TypeError whose message names the type (regex). */
function typeErrorNaming(re) {
  return (e) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    assert.match(e.message, re);
    return true;
  };
}

function shuffle(array, seed = 12345) {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}

// ---------------------------------------------------------------------------
// 1. Objects
// ---------------------------------------------------------------------------

const OBJECTS_SRC = `
const o = { a: 1, b: 'two', c: true, d: null, nested: { x: 10, list: [1, 2, 3] } };
vmExport(1, o);
vmExport(2, (obj, k) => obj[k]);
vmExport(3, (obj, k, v) => { obj[k] = v; });
vmExport(4, () => ({ a: 1, b: 'two', nested: { x: 10, list: [1, 2, 3] } }));
vmExport(5, (obj, a, b) => { obj[a + b] = 'built'; });
vmExport(6, (obj) => Reflect.ownKeys(obj));
vmExport(7, () => ({ a: 1, b: 'two', c: true, d: null, e: 2.5, f: undefined }));
vmExport(8, () => ({ a: 1, n: { c: [1, 2, 3] } }));
vmExport(9, () => ({ a: 1, n: { b: { c: { d: [1, { e: 2 }] } } }, arr: [1, [2, [3, [4]]]] }));
`;

describe('objects come out as live proxies', () => {
  test('reads go to the live guest object, including nested objects', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    assert.equal(typeof o, 'object');
    assert.equal(o.a, 1);
    assert.equal(o.b, 'two');
    assert.equal(o.c, true);
    assert.equal(o.d, null);
    assert.equal(o.nested.x, 10);
    assert.equal(o.nested.list[2], 3);
    // A guest-side write is visible through the existing proxy.
    vm.exports[3](o, 'a', 41);
    assert.equal(o.a, 41);
    vm.exports[3](o.nested, 'x', 'changed');
    assert.equal(o.nested.x, 'changed');
  });

  test('writes go to the live guest object (seen by guest code)', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    const read = vm.exports[2];
    o.a = 100;
    assert.equal(read(o, 'a'), 100);
    assert.equal(o.a, 100);
    o.newProp = 'hello';
    assert.equal(read(o, 'newProp'), 'hello');
    o.obj = { deep: [1, { z: 'z' }] };
    assert.equal(read(read(o, 'obj'), 'deep')[1].z, 'z');
    for (const v of [-0, NaN, Infinity, -Infinity, 2.5, 1e300, -8193, 0x7fffffff, 'ünïcödé ✓', '', true, false, null, undefined]) {
      o.v = v;
      assert.ok(Object.is(o.v, v), `round trip of ${String(v)}`);
      assert.ok(Object.is(read(o, 'v'), v), `guest read of ${String(v)}`);
    }
  });

  test("'x' in p, missing properties read undefined", () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    assert.equal('a' in o, true);
    assert.equal('nested' in o, true);
    assert.equal('missing' in o, false);
    assert.equal(o.missing, undefined);
    assert.equal(o.nested.missing, undefined);
    o.later = 0;
    assert.equal('later' in o, true);
    assert.ok(Object.prototype.hasOwnProperty.call(o, 'a'));
    assert.ok(!Object.prototype.hasOwnProperty.call(o, 'missing'));
  });

  test('property names not interned in the snapshot work both ways', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    const read = vm.exports[2];
    const write = vm.exports[3];
    const names = [];
    for (let i = 0; i < 20; i++) names.push(`fresh_${i}_${Math.random().toString(36).slice(2)}`);
    names.forEach((k, i) => { o[k] = i; });
    names.forEach((k, i) => {
      assert.equal(o[k], i);
      assert.equal(read(o, k), i);
      assert.ok(k in o);
    });
    assert.deepEqual(Object.keys(o).slice(-20), names);
    // Guest writes a runtime-built key; the host reads it.
    vm.exports[5](o, 'dyn', 'Key' + 7);
    assert.equal(o.dynKey7, 'built');
    // Guest writes a host-made key; the host reads it.
    const hk = 'hostKey_' + Date.now();
    write(o, hk, 'x');
    assert.equal(o[hk], 'x');
  });

  test('Object.keys, Reflect.ownKeys, Object.entries, spread, JSON.stringify see guest properties', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    assert.deepEqual(Object.keys(o), ['a', 'b', 'c', 'd', 'nested']);
    assert.deepEqual(Reflect.ownKeys(o), ['a', 'b', 'c', 'd', 'nested']);
    assert.deepEqual(Object.entries(o).map(([k]) => k), ['a', 'b', 'c', 'd', 'nested']);
    const spread = { ...o };
    assert.deepEqual(Object.keys(spread), ['a', 'b', 'c', 'd', 'nested']);
    assert.equal(spread.a, 1);
    assert.equal(spread.nested, o.nested);
    assert.equal(Object.assign({}, o).b, 'two');
    assert.equal(JSON.stringify(o), '{"a":1,"b":"two","c":true,"d":null,"nested":{"x":10,"list":[1,2,3]}}');
    o.added = [true];
    assert.deepEqual(Object.keys(o), ['a', 'b', 'c', 'd', 'nested', 'added']);
    assert.equal(JSON.stringify(o.added), '[true]');
  });

  test('assert.deepEqual / deepStrictEqual against host literals', () => {
    const vm = restore(OBJECTS_SRC);
    const fresh = vm.exports[4]();
    const literal = { a: 1, b: 'two', nested: { x: 10, list: [1, 2, 3] } };
    assert.deepEqual(fresh, literal);
    assert.deepStrictEqual(fresh, literal);
    assert.notDeepStrictEqual(fresh, { a: 1, b: 'two', nested: { x: 10, list: [1, 2, 4] } });
    assert.notDeepStrictEqual(fresh, { a: 1, b: 'two', nested: { x: 10, list: [1, 2, 3] }, extra: 1 });
  });

  test('for...in sees the guest properties', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    const keys = [];
    for (const k in o) keys.push(k);
    assert.deepEqual(keys, ['a', 'b', 'c', 'd', 'nested']);
  });

  test('util.inspect / console.log show the guest contents (flat object)', () => {
    const vm = restore(OBJECTS_SRC);
    const p = vm.exports[7]();
    const literal = { a: 1, b: 'two', c: true, d: null, e: 2.5, f: undefined };
    assert.equal(util.inspect(p), util.inspect(literal));
    assert.equal(util.format('%s', util.inspect(p)), util.inspect(literal));
    assert.equal(util.format(p), util.format(literal)); // what console.log prints
    assert.equal(util.inspect(vm.exports[1].nested.list), util.inspect([1, 2, 3]));
  });

  test('util.inspect of nested guest objects matches a host literal at the default depth', () => {
    const vm = restore(OBJECTS_SRC);
    const p = vm.exports[8]();
    const literal = { a: 1, n: { c: [1, 2, 3] } };
    // console.log(literal) prints `{ a: 1, n: { c: [ 1, 2, 3 ] } }`.
    assert.equal(util.inspect(p), util.inspect(literal));
  });

  test('util.inspect of nested guest objects respects depth like a host literal', () => {
    const vm = restore(OBJECTS_SRC);
    const p = vm.exports[9]();
    const literal = { a: 1, n: { b: { c: { d: [1, { e: 2 }] } } }, arr: [1, [2, [3, [4]]]] };
    // Line breaking is layout, not content: compare with whitespace folded.
    const fold = (s) => s.replace(/\s+/g, ' ');
    for (const depth of [0, 1, 2, 3, 4, Infinity, null]) {
      const opts = { depth, breakLength: Infinity };
      assert.equal(fold(util.inspect(p, opts)), fold(util.inspect(literal, opts)), `depth ${depth}`);
    }
  });

  test("util.format('%o') and util.inspect(showProxy) do not throw", () => {
    const vm = restore(OBJECTS_SRC);
    const p = vm.exports[7]();
    // console.log('%o', p) is ordinary host code; it must not overflow the stack.
    const a = util.format('%o', p);
    assert.match(a, /two/);
    const b = util.inspect(p, { showProxy: true });
    assert.equal(typeof b, 'string');
    const c = util.inspect(p, { showHidden: true });
    assert.match(c, /two/);
  });

  test('delete either removes the property or throws a clear error, consistently', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[4]();
    const read = vm.exports[2];
    let error = null;
    try {
      delete o.a;
    } catch (e) {
      error = e;
    }
    if (error) {
      assert.ok(error instanceof Error);
      assert.match(error.message, /delet/i);
      assert.equal(o.a, 1, 'a failed delete leaves the property');
      assert.equal(read(o, 'a'), 1);
    } else {
      assert.equal('a' in o, false);
      assert.equal(o.a, undefined);
      assert.equal(read(o, 'a'), undefined);
      assert.deepEqual(Object.keys(o), ['b', 'nested']);
    }
    // Reflect.deleteProperty never crashes either.
    try { Reflect.deleteProperty(o, 'b'); } catch (e) { assert.ok(e instanceof Error); }
  });

  test('ordinary Object.prototype methods work on a proxy', () => {
    const vm = restore(OBJECTS_SRC);
    const o = vm.exports[1];
    assert.equal(String(o), '[object Object]');
    assert.equal(o.toString(), '[object Object]');
    assert.equal(o.hasOwnProperty('a'), true);
    assert.equal(typeof o.valueOf, 'function');
  });
});

// ---------------------------------------------------------------------------
// 2. Arrays
// ---------------------------------------------------------------------------

const ARRAYS_SRC = `
const arr = [10, 20, 30];
vmExport(1, arr);
vmExport(2, () => [1, 'two', { three: 3 }, [4]]);
vmExport(3, (a, i) => a[i]);
vmExport(4, (a) => a.length);
vmExport(5, () => Reflect.ownKeys({ p: 1, q: 2, r: 3 }));
vmExport(6, () => []);
`;

describe('arrays come out as array proxies', () => {
  test('Array.isArray, length, index reads', () => {
    const vm = restore(ARRAYS_SRC);
    const a = vm.exports[1];
    assert.equal(Array.isArray(a), true);
    assert.equal(a.length, 3);
    assert.equal(a[0], 10);
    assert.equal(a[2], 30);
    assert.equal(a[3], undefined);
    assert.equal(a[-1], undefined);
    assert.equal(0 in a, true);
    assert.equal(3 in a, false);
    assert.equal(Object.getPrototypeOf(a), Array.prototype);
    const e = vm.exports[6]();
    assert.equal(Array.isArray(e), true);
    assert.equal(e.length, 0);
    assert.deepEqual([...e], []);
  });

  test('index writes, appends and growth are live in the guest', () => {
    const vm = restore(ARRAYS_SRC);
    const a = vm.exports[1];
    const read = vm.exports[3];
    const len = vm.exports[4];
    a[1] = 21;
    assert.equal(a[1], 21);
    assert.equal(read(a, 1), 21);
    a[3] = 40;
    assert.equal(a.length, 4);
    assert.equal(len(a), 4);
    a.push({ k: 'v' });
    assert.equal(a.length, 5);
    assert.equal(read(a, 4).k, 'v');
    a[7] = 'far';
    assert.equal(a.length, 8);
    assert.equal(a[5], undefined);
    assert.equal(read(a, 7), 'far');
  });

  test('iteration, spread, Array.from, array methods, JSON', () => {
    const vm = restore(ARRAYS_SRC);
    const a = vm.exports[2]();
    const seen = [];
    for (const x of a) seen.push(x);
    assert.equal(seen.length, 4);
    assert.equal(seen[0], 1);
    assert.equal(seen[1], 'two');
    assert.equal(seen[2].three, 3);
    assert.equal(seen[3][0], 4);
    const spread = [...a];
    assert.equal(spread.length, 4);
    assert.equal(spread[2], a[2]);
    const from = Array.from(a);
    assert.equal(from.length, 4);
    assert.equal(from[3], a[3]);
    assert.deepEqual(a.map((x) => typeof x), ['number', 'string', 'object', 'object']);
    assert.equal(a.indexOf('two'), 1);
    assert.deepEqual([].concat(vm.exports[1]), [10, 20, 30]);
    assert.equal(JSON.stringify(a), '[1,"two",{"three":3},[4]]');
    assert.deepStrictEqual(a, [1, 'two', { three: 3 }, [4]]);
    assert.deepEqual(Object.keys(vm.exports[1]), ['0', '1', '2']);
    const keys = [];
    for (const k in vm.exports[1]) keys.push(k);
    assert.deepEqual(keys, ['0', '1', '2']);
    assert.equal(util.inspect(vm.exports[1]), util.inspect([10, 20, 30]));
  });

  test('fixed-length arrays (Reflect.ownKeys in the guest) reject writes with MVM_E_TYPE_ERROR', () => {
    const vm = restore(ARRAYS_SRC);
    const k = vm.exports[5]();
    assert.equal(Array.isArray(k), true);
    assert.equal(k.length, 3);
    assert.deepEqual([...k], ['p', 'q', 'r']);
    assert.throws(() => { k[0] = 'x'; }, isMicroviumError('MVM_E_TYPE_ERROR'));
    assert.throws(() => { k[3] = 'x'; }, isMicroviumError('MVM_E_TYPE_ERROR'));
    assert.throws(() => k.push('x'), isMicroviumError('MVM_E_TYPE_ERROR'));
    assert.deepEqual([...k], ['p', 'q', 'r'], 'the array is unchanged');
    assert.equal(k.length, 3);
    // The VM is still usable.
    assert.equal(vm.exports[3](k, 1), 'q');
  });
});

// ---------------------------------------------------------------------------
// 3. Functions, closures, methods and classes
// ---------------------------------------------------------------------------

const FUNCTIONS_SRC = `
vmExport(1, (a, b) => a + b);
vmExport(2, () => { let c = 0; return () => { c++; return c; }; });
const obj = { v: 42, method: function (x) { return this.v + x; }, self: function () { return this; } };
vmExport(3, obj);
vmExport(4, () => ({ v: 7, method: obj.method }));
class Foo {
  constructor(v) { this.v = v; }
  get2() { return this.v * 2; }
  setV(v) { this.v = v; return this; }
  static make(v) { return new Foo(v); }
}
Foo.count = 5;
vmExport(5, Foo);
vmExport(6, () => new Foo(11));
vmExport(7, () => Foo.count);
vmExport(8, (x) => x.get2());
class Bar { constructor() { this.kind = 'bar'; } }
vmExport(9, Bar);
vmExport(10, () => obj.method);
`;

describe('functions, closures, methods and classes', () => {
  test('functions are callable and return values', () => {
    const vm = restore(FUNCTIONS_SRC);
    const add = vm.exports[1];
    assert.equal(typeof add, 'function');
    assert.equal(add(2, 3), 5);
    assert.equal(add('a', 'b'), 'ab');
    assert.equal(add(1.5, 1), 2.5);
  });

  test('closures keep their own state', () => {
    const vm = restore(FUNCTIONS_SRC);
    const c1 = vm.exports[2]();
    const c2 = vm.exports[2]();
    assert.equal(typeof c1, 'function');
    assert.notEqual(c1, c2);
    assert.equal(c1(), 1);
    assert.equal(c1(), 2);
    assert.equal(c2(), 1);
    vm.runGC(true);
    assert.equal(c1(), 3);
  });

  test('obj.method() passes the object as the guest this', () => {
    const vm = restore(FUNCTIONS_SRC);
    const o = vm.exports[3];
    assert.equal(o.method(1), 43);
    assert.equal(o.self(), o);
    o.v = 100;
    assert.equal(o.method(1), 101);
    const other = vm.exports[4]();
    assert.equal(other.method(1), 8);
    assert.equal(other.method, o.method, 'the same guest function, the same host function');
    // Explicit this through call/apply.
    assert.equal(o.method.call(other, 2), 9);
    assert.equal(Reflect.apply(o.method, o, [3]), 103);
    assert.equal(vm.exports[10](), o.method);
  });

  test('classes: new, instance methods, static members, instanceof', () => {
    const vm = restore(FUNCTIONS_SRC);
    const Foo = vm.exports[5];
    assert.equal(typeof Foo, 'function');
    const f = new Foo(3);
    assert.equal(f.v, 3);
    assert.equal(f.get2(), 6);
    assert.equal(f.setV(4), f);
    assert.equal(f.get2(), 8);
    assert.equal(vm.exports[8](f), 8, 'the guest sees the instance');
    // Static members.
    assert.equal(Foo.count, 5);
    Foo.count = 9;
    assert.equal(vm.exports[7](), 9);
    const made = Foo.make(12);
    assert.equal(made.v, 12);
    // instanceof for instances made in the host and in the guest.
    assert.ok(f instanceof Foo);
    assert.ok(made instanceof Foo);
    assert.ok(vm.exports[6]() instanceof Foo);
    assert.equal(Object.getPrototypeOf(f), Foo.prototype);
    const Bar = vm.exports[9];
    const b = new Bar();
    assert.equal(b.kind, 'bar');
    assert.ok(b instanceof Bar);
    assert.ok(!(b instanceof Foo));
    assert.ok(!(f instanceof Bar));
    assert.ok(!({} instanceof Foo));
    assert.deepEqual(Object.keys(f), ['v']);
  });

  test('calling a class without new throws a TypeError', () => {
    const vm = restore(FUNCTIONS_SRC);
    const Foo = vm.exports[5];
    assert.throws(() => Foo(1), TypeError);
  });
});

// ---------------------------------------------------------------------------
// 4. Uint8Array
// ---------------------------------------------------------------------------

const U8_SRC = `
vmExport(1, (n) => { const u = Microvium.newUint8Array(n); let i = 0; while (i < n) { u[i] = i * 3; i++; } return u; });
vmExport(2, (u, i) => u[i]);
vmExport(3, (u) => u.length);
const baked = Microvium.newUint8Array(3); baked[0] = 7; baked[1] = 8; baked[2] = 9;
vmExport(4, baked);
let held;
vmExport(5, (u) => { held = u; return u; });
vmExport(6, () => held);
`;

describe('Uint8Array', () => {
  test('comes out as a MicroviumUint8Array with length and iteration', () => {
    const vm = restore(U8_SRC);
    const u = vm.exports[1](10);
    assert.equal(u.constructor.name, 'MicroviumUint8Array');
    if (Microvium.MicroviumUint8Array) assert.ok(u instanceof Microvium.MicroviumUint8Array);
    assert.equal(u.length, 10);
    assert.deepEqual([...u], [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    const seen = [];
    for (const b of u) seen.push(b);
    assert.deepEqual(seen, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    assert.deepEqual(Array.from(u), seen);
    // A snapshot (compile-time) Uint8Array is readable.
    const baked = vm.exports[4];
    assert.equal(baked.length, 3);
    assert.deepEqual([...baked], [7, 8, 9]);
    assert.match(util.inspect(u), /27/);
  });

  test('slice(begin, end) matches TypedArray.prototype.slice for every index form', () => {
    const vm = restore(U8_SRC);
    const u = vm.exports[1](10);
    const ref = Uint8Array.from([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    const values = [undefined, 0, 1, 3, 9, 10, 11, 100, -1, -3, -10, -11, -100, 2.7, -2.7, NaN, Infinity, -Infinity, '2', null];
    for (const b of values) {
      for (const e of values) {
        const got = u.slice(b, e);
        assert.ok(got instanceof Uint8Array, 'slice returns a Uint8Array copy');
        assert.deepEqual(Array.from(got), Array.from(ref.slice(b, e)), `slice(${String(b)}, ${String(e)})`);
      }
    }
    assert.deepEqual(Array.from(u.slice()), Array.from(ref));
    assert.deepEqual(Array.from(u.slice(-3)), [21, 24, 27]);
    assert.deepEqual(Array.from(u.slice(20)), []);
  });

  test('slice returns a copy', () => {
    const vm = restore(U8_SRC);
    const u = vm.exports[1](5);
    const copy = u.slice();
    copy[0] = 99;
    assert.equal(u.slice()[0], 0);
    assert.equal(vm.exports[2](u, 0), 0);
  });

  test('set(array, offset) writes into guest memory', () => {
    const vm = restore(U8_SRC);
    const u = vm.exports[1](10);
    const read = vm.exports[2];
    u.set([100, 101]);
    assert.equal(read(u, 0), 100);
    assert.equal(read(u, 1), 101);
    u.set(new Uint8Array([7, 8, 9]), 7);
    assert.deepEqual(Array.from(u.slice(7)), [7, 8, 9]);
    assert.equal(read(u, 9), 9);
    u.set(Buffer.from([5]), 4);
    assert.equal(read(u, 4), 5);
    u.set([300, -1, 1.7], 0); // converted like a Uint8Array would
    assert.deepEqual(Array.from(u.slice(0, 3)), [44, 255, 1]);
    u.set([], 10); // empty at the very end is in bounds
    assert.equal(u.length, 10);
  });

  test('set out of bounds throws a RangeError and changes nothing', () => {
    const vm = restore(U8_SRC);
    const u = vm.exports[1](10);
    const before = Array.from(u);
    assert.throws(() => u.set([1, 2], 9), RangeError);
    assert.throws(() => u.set([1], 10), RangeError);
    assert.throws(() => u.set(new Uint8Array(11)), RangeError);
    assert.throws(() => u.set([1], -1), RangeError);
    assert.throws(() => u.set([1], Infinity), RangeError);
    assert.deepEqual(Array.from(u), before);
  });

  test('Uint8Array and Buffer go in by copy', () => {
    const vm = restore(U8_SRC);
    const echo = vm.exports[5];
    const host = new Uint8Array([1, 2, 3]);
    const g = echo(host);
    assert.equal(g.constructor.name, 'MicroviumUint8Array');
    assert.deepEqual(Array.from(g), [1, 2, 3]);
    host[0] = 50;
    assert.equal(vm.exports[2](g, 0), 1, 'later host writes do not reach the guest');
    const buf = Buffer.from([9, 8, 7, 6]);
    const gb = echo(buf);
    assert.deepEqual(Array.from(gb), [9, 8, 7, 6]);
    buf[0] = 0;
    assert.equal(vm.exports[2](gb, 0), 9);
    // A view with a byte offset copies its own bytes.
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6]);
    const view = new Uint8Array(backing.buffer, 2, 3);
    assert.deepEqual(Array.from(echo(view)), [2, 3, 4]);
    assert.equal(vm.exports[3](echo(view)), 3);
  });

  test('a MicroviumUint8Array goes back by reference', () => {
    const vm = restore(U8_SRC);
    const u = vm.exports[1](4);
    assert.equal(vm.exports[5](u), u);
    assert.equal(vm.exports[6](), u);
    u.set([77], 2);
    assert.equal(vm.exports[2](vm.exports[6](), 2), 77);
  });

  test('zero-length guest Uint8Arrays survive a guest collection (isolated)', () => {
    // Found while writing these tests: engine allocations of size 0 plus a
    // collection corrupted the heap (the collector wrote its forwarding
    // pointer past the 0-byte body) and, under pressure, collection allocated
    // without end (c/patches/zero-size-allocations.patch; more cases in
    // engine-arrays.test.js). Kept small so that a failure cannot exhaust the
    // machine.
    const r = runIsolated(`
      const vm = Microvium.restore(compile(\`
        let keep = [];
        vmExport(1, () => { const u = Microvium.newUint8Array(0); keep.push(u); return keep.length; });
        vmExport(2, () => keep);
      \`), {});
      // Two rounds: the first collection packs them side by side, where
      // each one's forwarding pointer overwrote the next one's header.
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 10; i++) vm.exports[1]();
        const before = vm.getMemoryStats().virtualHeapUsed;
        vm.runGC();
        const after = vm.getMemoryStats().virtualHeapUsed;
        assert.ok(after <= before, 'heap grew across a collection: ' + before + ' -> ' + after);
      }
      const keep = vm.exports[2]();
      assert.equal(keep.length, 20);
      for (const u of keep) assert.equal(u.length, 0);
      console.log('OK');
    `, { timeout: 15000 });
    assert.equal(r.signal, null, `child killed by ${r.signal}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /OK/);
  });
});

// ---------------------------------------------------------------------------
// 5. Into the VM
// ---------------------------------------------------------------------------

const INTO_SRC = `
let calls = 0;
let last;
vmExport(1, (x) => { calls++; last = x; return x; });
vmExport(2, () => calls);
vmExport(3, () => last);
vmExport(4, (o, k) => o[k]);
vmExport(5, (o, k, v) => { o[k] = v; });
const target = { keep: 1 };
vmExport(6, target);
const imp = vmImport(1);
vmExport(7, () => imp);
vmExport(8, (f) => f === imp);
vmExport(9, (f, x) => f(x));
vmExport(10, (x) => typeof x);
vmExport(11, (a, b) => a === b);
vmExport(12, () => ({ fresh: 1 }));
`;

function intoVm(imports) {
  const imp = imports || ((x) => x * 2);
  return { vm: restore(INTO_SRC, { 1: imp }), imp };
}

describe('into the VM', () => {
  test('plain objects and arrays are deep-copied, nested ones included', () => {
    const { vm } = intoVm();
    const echo = vm.exports[1];
    const read = vm.exports[4];
    const original = { a: 1, s: 'str', list: [1, [2, { deep: 'yes' }]], inner: { x: { y: { z: -0.5 } } }, n: null, u: undefined };
    const out = echo(original);
    assert.notEqual(out, original, 'a proxy of the guest copy, not the host object');
    assert.equal(out.a, 1);
    assert.equal(read(read(read(out, 'list'), 1), 1).deep, 'yes');
    assert.equal(out.inner.x.y.z, -0.5);
    assert.equal(out.n, null);
    assert.equal(vm.exports[10](read(out, 'inner')), 'object');
    assert.deepEqual(JSON.parse(JSON.stringify(out)), JSON.parse(JSON.stringify(original)));
    // A copy: later host changes do not reach the guest.
    original.a = 2;
    original.list[1][1].deep = 'no';
    original.inner.x = 'gone';
    const last = vm.exports[3]();
    assert.equal(last, out);
    assert.equal(last.a, 1);
    assert.equal(last.list[1][1].deep, 'yes');
    assert.equal(last.inner.x.y.z, -0.5);
    // Arrays.
    const arr = echo([1, 'b', [true, { k: [] }]]);
    assert.equal(Array.isArray(arr), true);
    assert.equal(arr[2][1].k.length, 0);
    assert.deepStrictEqual(arr, [1, 'b', [true, { k: [] }]]);
  });

  test('own enumerable string keys only', () => {
    const { vm } = intoVm();
    const src = Object.create({ inherited: 1 });
    src.own = 2;
    Object.defineProperty(src, 'hidden', { value: 3, enumerable: false });
    src[Symbol('s')] = 4;
    const out = vm.exports[1](src);
    assert.deepEqual(Object.keys(out), ['own']);
  });

  test('a shared (non-cyclic) sub-object is not mistaken for a cycle', () => {
    const { vm } = intoVm();
    const shared = { v: 1 };
    const out = vm.exports[1]({ a: shared, b: shared, list: [shared, shared] });
    assert.equal(out.a.v, 1);
    assert.equal(out.b.v, 1);
    assert.equal(out.list[1].v, 1);
  });

  test('a cycle gives a clear error and leaves the guest unchanged', () => {
    const { vm } = intoVm();
    const target = vm.exports[6];
    const cyc = { a: 1 };
    cyc.self = cyc;
    assert.throws(() => vm.exports[1](cyc), (e) => e instanceof Error && /cycl|circular/i.test(e.message));
    const arr = [1];
    arr.push([arr]);
    assert.throws(() => vm.exports[1](arr), (e) => e instanceof Error && /cycl|circular/i.test(e.message));
    assert.throws(() => { target.c = cyc; }, (e) => e instanceof Error && /cycl|circular/i.test(e.message));
    assert.equal(vm.exports[2](), 0, 'the guest function was not called');
    assert.deepEqual(Object.keys(target), ['keep']);
    assert.equal(vm.exports[1](5), 5, 'the VM is still usable');
  });

  test('moderate nesting (32 levels) is copied', () => {
    const { vm } = intoVm();
    const deep = {};
    let cur = deep;
    for (let i = 0; i < 32; i++) { cur.x = { i }; cur = cur.x; }
    let out = vm.exports[1](deep);
    for (let i = 0; i < 32; i++) { out = out.x; assert.equal(out.i, i); }
  });

  test('100,000-deep nesting gives a clear error, not a crash (isolated)', () => {
    const r = runIsolated(`
      const vm = Microvium.restore(compile('let n = 0; vmExport(1, (x) => { n++; return 1; }); vmExport(2, () => n); const t = { keep: 1 }; vmExport(3, t);'), {});
      const deepObj = {}; let c = deepObj;
      for (let i = 0; i < 100000; i++) { c.x = {}; c = c.x; }
      const deepArr = []; let a = deepArr;
      for (let i = 0; i < 100000; i++) { const n = []; a.push(n); a = n; }
      const messages = [];
      for (const v of [deepObj, deepArr, { wrap: [deepObj] }]) {
        assert.throws(() => vm.exports[1](v), (e) => { messages.push(e.constructor.name + ': ' + e.message); return e instanceof Error; });
      }
      assert.throws(() => { vm.exports[3].d = deepObj; }, (e) => { messages.push(e.constructor.name + ': ' + e.message); return e instanceof Error; });
      assert.equal(vm.exports[2](), 0, 'guest not called');
      assert.deepEqual(Object.keys(vm.exports[3]), ['keep']);
      assert.equal(vm.exports[1](1), 1, 'VM still usable');
      console.log(JSON.stringify(messages));
    `, { timeout: 60000 });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    const messages = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(messages.length, 4);
    for (const m of messages) {
      assert.match(m, /deep|nest|depth/i, `a clear message: ${m}`);
      assert.doesNotMatch(m, /Maximum call stack/i);
    }
  });

  test('an Error carries message and name', () => {
    const { vm } = intoVm();
    const read = vm.exports[4];
    const e1 = vm.exports[1](new Error('plain failure'));
    assert.equal(e1.message, 'plain failure');
    assert.equal(e1.name, 'Error');
    assert.equal(read(e1, 'message'), 'plain failure');
    const e2 = vm.exports[1](new TypeError('bad type'));
    assert.equal(e2.message, 'bad type');
    assert.equal(e2.name, 'TypeError');
    assert.equal(read(e2, 'name'), 'TypeError');
    class MyErr extends Error { constructor(m) { super(m); this.name = 'MyErr'; } }
    const e3 = vm.exports[1](new MyErr('mine'));
    assert.equal(e3.message, 'mine');
    assert.equal(e3.name, 'MyErr');
    // Nested inside a plain object too.
    const wrapped = vm.exports[1]({ err: new RangeError('inner') });
    assert.equal(wrapped.err.message, 'inner');
    assert.equal(wrapped.err.name, 'RangeError');
  });

  test('a value that came out goes back by reference; mutations are visible both ways', () => {
    const { vm } = intoVm();
    const target = vm.exports[6];
    const same = vm.exports[11];
    assert.equal(vm.exports[1](target), target);
    assert.equal(same(target, vm.exports[6]), true);
    vm.exports[5](target, 'fromGuest', 1);
    assert.equal(target.fromGuest, 1);
    target.fromHost = 2;
    assert.equal(vm.exports[4](vm.exports[3](), 'fromHost'), 2);
    // Nested inside a deep copy, a proxy still goes by reference.
    const fresh = vm.exports[12]();
    const box = vm.exports[1]({ ref: fresh, list: [fresh, target] });
    assert.equal(box.ref, fresh);
    assert.equal(box.list[0], fresh);
    assert.equal(box.list[1], target);
    assert.equal(same(box.ref, fresh), true);
    fresh.changed = 'yes';
    assert.equal(vm.exports[4](box.ref, 'changed'), 'yes');
    vm.exports[5](box.list[0], 'back', 'too');
    assert.equal(fresh.back, 'too');
    // Functions that came out go back by reference as well.
    const f = vm.exports[1];
    assert.equal(vm.exports[1](f), f);
    assert.equal(vm.exports[10](f), 'function');
  });

  test('a known import function goes back as that import and comes out as the very same host function', () => {
    const { vm, imp } = intoVm();
    assert.equal(vm.exports[7](), imp);
    assert.equal(vm.exports[8](imp), true);
    assert.equal(vm.exports[1](imp), imp);
    assert.equal(vm.exports[9](imp, 21), 42);
    const box = vm.exports[1]({ fn: imp, list: [imp] });
    assert.equal(box.fn, imp);
    assert.equal(box.list[0], imp);
    vm.exports[6].fn = imp;
    assert.equal(vm.exports[6].fn, imp);
  });

  test('other values throw a TypeError naming the type and leave the guest unchanged', () => {
    const { vm } = intoVm();
    const other = intoVm((x) => x); // another VM, with a different import
    const cases = [
      [() => 1, /function/i],
      [function named() {}, /function/i],
      [class K {}, /function|class/i],
      [Symbol('s'), /symbol/i],
      [10n, /bigint/i],
      [new Map([[1, 2]]), /Map/],
      [new Set([1]), /Set/],
      [Promise.resolve(1), /Promise/],
      [new Int8Array(2), /Int8Array/],
      [new Uint16Array(2), /Uint16Array/],
      [new Int32Array(2), /Int32Array/],
      [new Float32Array(2), /Float32Array/],
      [new Float64Array(2), /Float64Array/],
      [new BigInt64Array(2), /BigInt64Array/],
      [new Uint8ClampedArray(2), /Uint8ClampedArray/],
      [other.vm.exports[6], /another|other|different/i],
      [other.vm.exports[1], /another|other|different|function/i],
      [other.vm.exports[12](), /another|other|different/i],
      [other.imp, /function|another|other/i],
    ];
    const target = vm.exports[6];
    for (const [value, re] of cases) {
      const what = typeof value === 'symbol' ? 'symbol' : util.inspect(value, { depth: 0 }).slice(0, 40);
      assert.throws(() => vm.exports[1](value), typeErrorNaming(re), `argument: ${what}`);
      assert.throws(() => vm.exports[1]({ ok: 1, nested: [value] }), typeErrorNaming(re), `nested argument: ${what}`);
      assert.throws(() => { target.x = value; }, typeErrorNaming(re), `property write: ${what}`);
      assert.throws(() => { target.y = { fine: 'yes', bad: value }; }, typeErrorNaming(re), `nested property write: ${what}`);
    }
    assert.equal(vm.exports[2](), 0, 'the guest function never ran');
    assert.equal(vm.exports[3](), undefined);
    assert.deepEqual(Object.keys(target), ['keep']);
    assert.equal(target.x, undefined);
    assert.equal(vm.exports[1](3), 3, 'the VM is still usable');
    assert.equal(other.vm.exports[1](4), 4, 'the other VM is still usable');
  });

  test('a host function that throws a TypeError for a bad result leaves the guest usable', () => {
    const vm = restore(`
      const f = vmImport(1);
      let state = 0;
      vmExport(1, () => { state = 1; const r = f(); state = 2; return r; });
      vmExport(2, () => state);
    `, { 1: () => new Map() });
    assert.throws(() => vm.exports[1](), (e) => e instanceof Error && /Map/.test(e.message));
    assert.equal(typeof vm.exports[2](), 'number');
  });
});

// ---------------------------------------------------------------------------
// 6. Identity and prototypes
// ---------------------------------------------------------------------------

const IDENTITY_SRC = `
const objs = [];
const mk = (v) => () => v;
let i = 0;
while (i < 20) { objs.push({ id: i, arr: [i], fn: mk(i) }); i++; }
const u8 = Microvium.newUint8Array(4);
vmExport(1, (k) => objs[k]);
vmExport(2, (n) => { let g = []; let j = 0; while (j < n) { g.push({ j: j, s: 'garbage' }); j++; } return g.length; });
vmExport(3, () => ({ fresh: true }));
vmExport(4, (x) => x);
class C { constructor(v) { this.v = v; } m() { return this.v; } }
vmExport(5, C);
vmExport(6, () => new C(1));
vmExport(7, () => u8);
vmExport(8, () => Reflect.ownKeys(objs[0]));
`;

describe('identity and prototypes', () => {
  test('the same guest object is the same host value across many collections and allocations', () => {
    const vm = restore(IDENTITY_SRC);
    const get = vm.exports[1];
    const first = [];
    const wm = new WeakMap();
    const m = new Map();
    for (let k = 0; k < 20; k++) {
      const o = get(k);
      first.push(o);
      wm.set(o, k);
      m.set(o, k);
      m.set(o.arr, -k);
      m.set(o.fn, `fn${k}`);
    }
    const C = vm.exports[5];
    const u8 = vm.exports[7]();
    for (let round = 0; round < 200; round++) {
      vm.exports[2](round % 50);
      if (round % 3 === 0) vm.runGC(round % 2 === 0);
      const k = round % 20;
      const o = get(k);
      assert.equal(o, first[k], `round ${round}`);
      assert.equal(wm.get(o), k);
      assert.equal(m.get(o.arr), -k);
      assert.equal(m.get(o.fn), `fn${k}`);
      assert.equal(o.fn(), k);
      assert.equal(o.id, k);
      assert.equal(vm.exports[5], C);
      assert.equal(vm.exports[7](), u8);
    }
  });

  test('a value only the host holds keeps its identity across collections', () => {
    const vm = restore(IDENTITY_SRC);
    const fresh = vm.exports[3]();
    const arr = vm.exports[8]();
    const set = new Set([fresh, arr]);
    for (let i = 0; i < 50; i++) {
      vm.exports[2](40);
      vm.runGC(i % 2 === 1);
      assert.equal(vm.exports[4](fresh), fresh);
      assert.equal(vm.exports[4](arr), arr);
      assert.ok(set.has(vm.exports[4](fresh)));
      assert.equal(fresh.fresh, true);
      assert.deepEqual([...arr], ['id', 'arr', 'fn']);
    }
  });

  test('prototypes: plain object → Object.prototype, array → Array.prototype, instance → its guest prototype', () => {
    const vm = restore(IDENTITY_SRC);
    const o = vm.exports[1](0);
    assert.equal(Object.getPrototypeOf(o), Object.prototype);
    assert.equal(Object.getPrototypeOf(o.arr), Array.prototype);
    assert.equal(Object.getPrototypeOf(vm.exports[8]()), Array.prototype);
    assert.ok(o instanceof Object);
    assert.ok(o.arr instanceof Array);
    const C = vm.exports[5];
    const inst = vm.exports[6]();
    const proto = Object.getPrototypeOf(inst);
    assert.equal(proto, C.prototype);
    assert.equal(Object.getPrototypeOf(new C(2)), proto);
    assert.equal(typeof proto.m, 'function');
    assert.ok(inst instanceof C);
    assert.equal(inst.m(), 1);
    assert.ok(!(o instanceof C));
    vm.runGC(true);
    assert.equal(Object.getPrototypeOf(vm.exports[6]()), C.prototype);
  });

  test('a guest object whose host value was collected comes out again, correct', async () => {
    const vm = restore(IDENTITY_SRC);
    // Resolve the exports first: each exported function holds a handle.
    for (const id of Object.keys(vm.exports)) void vm.exports[id];
    const base = liveHandles(vm);
    (() => {
      for (let k = 0; k < 20; k++) assert.equal(vm.exports[1](k).id, k);
    })();
    await settle();
    vm.exports[2](30);
    vm.runGC(true);
    assert.ok(liveHandles(vm) <= base + 2, `handles released (${liveHandles(vm)} vs ${base})`);
    for (let k = 0; k < 20; k++) {
      const o = vm.exports[1](k);
      assert.equal(o.id, k);
      assert.equal(o.arr[0], k);
      assert.equal(vm.exports[1](k), o);
    }
  });
});

// ---------------------------------------------------------------------------
// 7. Handles
// ---------------------------------------------------------------------------

describe('handles', () => {
  test('no fixed cap: 10,000 live proxies at once, then released after host GC', async () => {
    const vm = restore('vmExport(1, () => ({})); vmExport(2, (x) => x);');
    const base = liveHandles(vm);
    let held = [];
    for (let i = 0; i < 10000; i++) held.push(vm.exports[1]());
    assert.equal(new Set(held).size, 10000);
    assert.ok(liveHandles(vm) >= base + 10000, `liveHandles ${liveHandles(vm)}`);
    vm.runGC();
    assert.ok(vm.getMemoryStats().virtualHeapUsed >= 10000 * 4, 'the held objects survive a guest collection');
    // Every one is still a valid, distinct guest object.
    for (let i = 0; i < held.length; i += 97) {
      assert.equal(vm.exports[2](held[i]), held[i]);
      assert.deepEqual(Object.keys(held[i]), []);
    }
    held = null;
    await settle(6);
    assert.ok(liveHandles(vm) <= base + 10, `released: ${liveHandles(vm)} live (base ${base})`);
    vm.runGC();
    assert.ok(vm.getMemoryStats().virtualHeapUsed < 4000, `guest heap freed: ${vm.getMemoryStats().virtualHeapUsed}`);
    // The table is reusable after release.
    const again = [];
    for (let i = 0; i < 10000; i++) again.push(vm.exports[1]());
    assert.ok(liveHandles(vm) >= base + 10000);
  });

  test('releasing in random order keeps the survivors valid', async () => {
    const vm = restore(`
      vmExport(1, (i) => ({ id: i }));
      vmExport(2, (o) => o.id);
      vmExport(3, (n) => { let g = []; let j = 0; while (j < n) { g.push([j]); j++; } return n; });
    `);
    const base = liveHandles(vm);
    const all = [];
    for (let i = 0; i < 4000; i++) all.push(vm.exports[1](i));
    const order = shuffle(all.map((_, i) => i));
    const kept = new Map();
    for (const i of order.slice(0, 2000)) kept.set(i, all[i]);
    // Drop the other half in random order, a slice at a time.
    const dropped = order.slice(2000);
    for (let s = 0; s < dropped.length; s += 250) {
      for (const i of dropped.slice(s, s + 250)) all[i] = null;
      await settle(2);
      vm.exports[3](50);
      vm.runGC(s % 500 === 0);
    }
    all.length = 0;
    await settle(4);
    const live = liveHandles(vm);
    assert.ok(live >= base + 2000 && live <= base + 2010, `live ${live}, base ${base}`);
    for (const [i, o] of kept) {
      assert.equal(o.id, i);
      assert.equal(vm.exports[2](o), i);
    }
  });

  test('values that came out keep their VM alive after the VM object is dropped', async () => {
    // API.md: a VM is freed when it *and everything that came out of it* are
    // garbage collected.
    const { f, o, u, K } = (() => {
      const vm = restore(`
        const o = { a: 1 };
        class K { constructor() { this.k = 1; } }
        vmExport(1, (i) => ({ i: i, list: [i] }));
        vmExport(2, o);
        vmExport(3, () => { const u = Microvium.newUint8Array(2); u[0] = 5; return u; });
        vmExport(4, K);
      `);
      return { f: vm.exports[1], o: vm.exports[2], u: vm.exports[3](), K: vm.exports[4] };
    })();
    for (let round = 0; round < 5; round++) {
      await settle(3);
      for (let i = 0; i < 200; i++) assert.equal(f(i).i, i);
      assert.equal(o.a, 1);
      o.a = 1;
      assert.equal(u.slice()[0], 5);
      assert.equal(new K().k, 1);
    }
  });

  test('taking and releasing a handle costs about the same with 6,000 live', async () => {
    const vm = restore('vmExport(1, () => ({}));');
    const f = vm.exports[1];
    async function churn() {
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < 4; r++) {
        let tmp = [];
        for (let i = 0; i < 2000; i++) tmp.push(f());
        tmp = null;
        await settle(2);
      }
      return Number(process.hrtime.bigint() - t0) / 1e6;
    }
    await churn(); // warm up
    const empty = Math.min(await churn(), await churn());
    const hold = [];
    for (let i = 0; i < 6000; i++) hold.push(f());
    const full = Math.min(await churn(), await churn());
    assert.equal(hold.length, 6000);
    assert.ok(full < empty * 10 + 50, `churn with 6,000 live: ${full.toFixed(1)} ms vs ${empty.toFixed(1)} ms with none`);
  });
});

// ---------------------------------------------------------------------------
// 8. GC safety
// ---------------------------------------------------------------------------

describe('GC safety', () => {
  test('a nearly full guest heap: collections during argument and result conversion', async () => {
    const results = [];
    const vm = restore(`
      let ballast = undefined;
      vmExport(1, (n) => { let i = 0; while (i < n) { ballast = { i: i, next: ballast }; i++; } return n; });
      vmExport(2, (n) => { let g = []; let i = 0; while (i < n) { g.push([i]); i++; } g = undefined; return n; });
      vmExport(3, (a, b, c, d, e, f, g, h) => [a, b, c, d, e, f, g, h]);
      const host = vmImport(1);
      vmExport(4, (r, p) => host(r, p, [r, 'g' + r], { r: r, s: 'gs' + r }, 'str' + r));
      vmExport(5, (o, k, v) => { o[k] = v; return o[k]; });
    `, {
      1: (r, p, arr, obj, s) => {
        results.push([r, p, arr && arr[0], arr && arr[1], obj && obj.r, obj && obj.s, s]);
        // The result is copied into the guest under the same pressure.
        return { back: 'result_' + r, list: Array.from({ length: 8 }, (_, i) => 'item' + i + '_' + r), p };
      },
    });
    vm.exports[1](3900); // about 55 kB of live ballast in a 64 kB heap
    vm.runGC();
    const keep = [];
    let collections = 0;
    for (let r = 0; r < 300; r++) {
      if (r % 5 === 0) await settle(1); // let dropped handles go
      vm.exports[2]((r % 13) * 7);
      const p = keep.length ? keep[r % keep.length] : undefined;
      const args = [
        { name: 'item_' + r, tags: ['t' + r, 't' + (r + 1)], nested: { deep: { v: r + 0.5, s: 'deep_' + r } } },
        'string_arg_' + r + '_'.repeat(r % 50),
        [r, r + 1.25, 'e' + r, { q: 'q' + r }],
        p,
        r * 1.5,
        { another: 'another_value_' + r, list: Array.from({ length: 10 }, (_, i) => 'L' + i + '_' + r) },
        new Uint8Array([r & 255, 1, 2, 3]),
        new Error('err_' + r),
      ];
      const before = vm.getMemoryStats().virtualHeapUsed;
      const out = vm.exports[3](...args);
      if (vm.getMemoryStats().virtualHeapUsed < before) collections++;
      assert.deepEqual(JSON.parse(JSON.stringify(out[0])), args[0]);
      assert.equal(out[1], args[1]);
      assert.deepEqual(JSON.parse(JSON.stringify(out[2])), args[2]);
      assert.equal(out[3], p);
      assert.equal(out[4], args[4]);
      assert.deepEqual(JSON.parse(JSON.stringify(out[5])), args[5]);
      assert.deepEqual([...out[6]], [...args[6]]);
      assert.equal(out[7].message, 'err_' + r);
      if (r % 20 === 0) { keep.push(out[0]); if (keep.length > 6) keep.shift(); }

      // Guest → host arguments and host → guest result under pressure.
      const back = vm.exports[4](r, p);
      assert.deepEqual(results.pop(), [r, p, r, 'g' + r, r, 'gs' + r, 'str' + r]);
      assert.equal(back.back, 'result_' + r);
      assert.equal(back.list[7], 'item7_' + r);
      assert.equal(back.p, p);

      // Property writes of fresh structures under pressure.
      if (p) {
        const w = vm.exports[5](p, 'w', { r, s: 'w' + r });
        assert.equal(w.s, 'w' + r);
        p['h' + (r % 3)] = ['x' + r, { y: 'y' + r }];
        assert.equal(p['h' + (r % 3)][1].y, 'y' + r);
      }
    }
    for (const p of keep) assert.match(p.name, /^item_\d+$/);
    assert.ok(collections >= 10, `expected collections during calls, saw ${collections}`);
  });

  test('runGC between every step', () => {
    const vm = restore(`
      const o = { a: 1, list: [1, 2, 3], inner: { s: 'x' } };
      vmExport(1, o);
      vmExport(2, (x, y) => [y, x]);
      vmExport(3, (n) => { let g = []; let i = 0; while (i < n) { g.push({ i: i }); i++; } return n; });
      class K { constructor(v) { this.v = v; } get() { return this.v; } }
      vmExport(4, K);
      vmExport(5, (n) => { const u = Microvium.newUint8Array(n); u[0] = 42; return u; });
      vmExport(6, () => { let c = 0; return () => { c++; return c; }; });
    `);
    const gc = (i) => { vm.exports[3](i % 40); vm.runGC(i % 2 === 0); };
    let step = 0;
    const o = vm.exports[1]; gc(step++);
    const list = o.list; gc(step++);
    const inner = o.inner; gc(step++);
    const K = vm.exports[4]; gc(step++);
    const k = new K({ deep: ['v'] }); gc(step++);
    const u = vm.exports[5](8); gc(step++);
    const counter = vm.exports[6](); gc(step++);
    for (let round = 0; round < 30; round++) {
      assert.equal(o.a, round === 0 ? 1 : round); gc(step++);
      o.a = round + 1; gc(step++);
      assert.equal(list[1], 2); gc(step++);
      list.push(round); gc(step++);
      assert.equal(list.length, 4 + round); gc(step++);
      assert.equal(inner.s, 'x'); gc(step++);
      assert.equal(o.inner, inner); gc(step++);
      assert.equal(o.list, list); gc(step++);
      const pair = vm.exports[2]({ big: 'a'.repeat(100) + round }, inner); gc(step++);
      assert.equal(pair[0], inner); gc(step++);
      assert.equal(pair[1].big, 'a'.repeat(100) + round); gc(step++);
      assert.equal(k.get().deep[0], 'v'); gc(step++);
      assert.ok(k instanceof K); gc(step++);
      assert.equal(u.slice()[0], 42); gc(step++);
      u.set([round], 1); gc(step++);
      assert.equal(u.slice()[1], round); gc(step++);
      assert.equal(counter(), round + 1); gc(step++);
      assert.equal(vm.exports[1], o); gc(step++);
    }
    assert.deepEqual(JSON.parse(JSON.stringify(o)), { a: 30, list: [1, 2, 3, ...Array.from({ length: 30 }, (_, i) => i)], inner: { s: 'x' } });
  });
});

test('strings of every shape cross in as UTF-8 does in Node (lone surrogates become U+FFFD)', () => {
  const vm = Microvium.restore(compile(`vmExport(1, (s) => s); vmExport(2, (a, b) => a + b);`), {});
  const shapes = [
    '', 'a', 'héllo', '日本語', '😀x', 'a\uD800b', '\uDC00', 'end\uD83D', 'abc\u0000def',
    'x'.repeat(62), 'y'.repeat(63), 'z'.repeat(64), 'é'.repeat(64), '😀'.repeat(40), 'ÿ'.repeat(300),
    'ascii then ' + 'é'.repeat(70) + ' then \uD800 then 😀',
  ];
  for (const s of shapes) {
    const node = Buffer.from(s, 'utf8').toString('utf8');
    assert.equal(vm.exports[1](s), node, JSON.stringify(s).slice(0, 30));
    assert.equal(vm.exports[2](s, s), node + node);
  }
});

test('a call that returns one of its string arguments gives that string; collections in between change nothing', () => {
  // The host hands back its own string when the result is the very guest
  // string an argument became (src/calls.rs StringArgs); any other result,
  // equal or not, is read from the guest. The guest heap is churned so
  // that its collector moves strings during the calls.
  const source = `
    let junk = [];
    function churn(n) {
      for (let i = 0; i < n; i++) { junk = [i, 'j' + i, { k: i }]; }
    }
    vmExport(1, (a, b, c) => a);
    vmExport(2, (a, b, c) => b);
    vmExport(3, (a, b, c) => c);
    vmExport(4, (a, b, c) => { churn(3000); return a; });
    vmExport(5, (a, b, c) => { churn(3000); return b + ''; });
    vmExport(6, (a, b, c) => { churn(1500); const s = a + b; churn(1500); return s; });
    vmExport(7, (a, b, c) => (a === b ? b : c));
    vmExport(8, (a, b, c) => { churn(3000); return [a, b, c].length > 2 ? c : a; });`;
  const nodeExports = {};
  vmModule.runInContext(source, vmModule.createContext({ vmImport: () => undefined, vmExport: (id, v) => { nodeExports[id] = v; } }));
  const vm = Microvium.restore(compile(source), {});
  // Lone surrogates reach the guest as U+FFFD, so such a string comes back
  // changed: in Node, the change is made here.
  const inputs = [['x', 'y', 'z'], ['same', 'same', 'other'], ['', 'é', '日本'], ['a'.repeat(100), 'b', 5], [1, 'two', null],
    ['a\uD800b', 'ok', '\uDC00'], ['😀', 'end\uD83D', 'x']];
  const asGuestSees = (v) => (typeof v === 'string' ? Buffer.from(v, 'utf8').toString('utf8') : v);
  for (let round = 0; round < 3; round++) {
    for (let id = 1; id <= 8; id++) {
      // Plain calls (a method call takes another path).
      const guest = vm.exports[id];
      const node = nodeExports[id];
      for (const [a, b, c] of inputs) {
        assert.deepEqual(guest(a, b, c), node(...[a, b, c].map(asGuestSees)), `export ${id} of ${JSON.stringify([a, b, c])}`);
      }
    }
  }
  vm.dispose();
});
