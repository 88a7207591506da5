'use strict';
// Property keys crossing the boundary, and the traps of the host's proxies.
//
// Run with: node --expose-gc --test __test__/keys-and-proxies.test.js
//
// What the guest computes is compared with plain Node.js running the same
// source (runBoth); what the host sees through a proxy is compared with the
// same operations on an equivalent plain host object.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, runBoth, tick, settle } = require('./helpers');

const internals = Microvium.__internals;

function restore(source, imports = {}) {
  return Microvium.restore(compile(source), imports);
}


function isMicroviumError(code, re) {
  return (e) => {
    assert.ok(e instanceof Microvium.MicroviumError, `expected a MicroviumError, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    assert.equal(e.code, code);
    if (re) assert.match(e.message, re);
    return true;
  };
}

function typeError(re) {
  return (e) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  };
}

/** Asserts the guest reported what Node reported, and neither threw. */
function assertSameAsNode({ node, guest }) {
  assert.equal(node.threw, undefined, `Node threw ${JSON.stringify(node.threw)}`);
  assert.deepEqual(guest, node);
}

// Names that look numeric but are not array indexes the engine holds as
// integers (plus some that are), and other primitives used as keys.
const ODD_KEYS = ['01', '00', '8192', '99999', '-1', '-0', '1.5', '1e3', ' 1', '1 ', '+1', '0x10', '', '4294967295', '4294967294', 'NaN', 'Infinity', 'undefined', '5', '0', '8191'];

describe('numeric-looking keys', () => {
  test('numeric-looking keys: guest code reads and writes them as JavaScript does', () => {
    const source = `
      const r = vmImport(1);
      vmExport(1, (k) => {
        const o = {};
        o['0' + '1'] = 'a'; r(o['01']);
        o['1' + '0'] = 'b'; r(o[10]); r(o['10']);
        o['01'] = 'c'; r(o['0' + '1']); r(o[1]);
        o[8192] = 'd'; r(o['8192']); r(o['81' + '92']);
        o['99999'] = 'e'; r(o[99999]);
        o[-1] = 'f'; r(o['-1']); r(o[0 - 1]);
        o[1.5] = 'g'; r(o['1.5']); r(o[3 / 2]);
        o['1e3'] = 'h'; r(o[1000]); r(o['1e3']);
        o[' 1'] = 'i'; r(o[1]); r(o[' 1']);
        o[-0] = 'j'; r(o[0]); r(o['0']);
        o[0 / 0] = 'k'; r(o['NaN']);
        o[1 / 0] = 'l'; r(o['Infinity']);
        o[4294967295] = 'm'; r(o['4294967295']);
        o[0.1 + 0.2] = 'n'; r(o['0.30000000000000004']);
        o[undefined] = 'p'; r(o['undefined']);
        o[null] = 'q'; r(o['null']);
        o[true] = 's'; r(o['true']); r(o[false]);
        o[''] = 't'; r(o['']);
        o[k] = 'u'; r(o['0' + '7']); r(o[7]);
        const a = [10, 20, 30];
        r(a['1']); r(a['0' + '1']); r(a[-1]); r(a[1.5]); r(a[8192]); r(a['8192']); r(a['2']); r(a[k]);
        a['1'] = 21; r(a[1]); r(a.length);
        a['' + 3] = 40; r(a[3]); r(a.length);
      });
    `;
    assertSameAsNode(runBoth(source, { args: ['07'] }));
  });

  test('numeric-looking keys: host objects passed in keep them', () => {
    const source = `
      const r = vmImport(1);
      vmExport(1, (o, keys) => {
        for (let i = 0; i < keys.length; i++) r(o[keys[i]]);
        r(o['01']); r(o[8192]); r(o['99999']); r(o[-1]); r(o[1.5]); r(o[1000]); r(o['']); r(o[5]);
        r(o.nested['01']); r(o.nested[8192]);
      });
    `;
    const o = Object.fromEntries(ODD_KEYS.map((k, i) => [k, i]));
    o.nested = { '01': 'x', 8192: 'y' };
    assertSameAsNode(runBoth(source, { args: [o, ODD_KEYS] }));
  });

  test('numeric-looking keys: through a proxy, as on a plain host object', () => {
    const vm = restore(`vmExport(1, () => ({})); vmExport(2, (o, k) => o[k]);`);
    const p = vm.exports[1]();
    const plain = {};
    for (const [i, k] of ODD_KEYS.entries()) {
      p[k] = i;
      plain[k] = i;
    }
    for (const k of [...ODD_KEYS, '1', '10', '8193', 'x']) {
      assert.equal(p[k], plain[k], `read ${JSON.stringify(k)}`);
      assert.equal(k in p, k in plain, `in ${JSON.stringify(k)}`);
      assert.deepEqual(Object.getOwnPropertyDescriptor(p, k), Object.getOwnPropertyDescriptor(plain, k), `descriptor ${JSON.stringify(k)}`);
      // The guest sees what the host wrote, whichever form its key takes.
      assert.equal(vm.exports[2](p, k), plain[k], `guest read ${JSON.stringify(k)}`);
    }
    // Array indexes first, in numeric order, then the rest as created.
    assert.deepEqual(Object.keys(p), Object.keys(plain));
    assert.equal(JSON.stringify(p), JSON.stringify(plain));
    assert.deepEqual({ ...p }, { ...plain });
    // Numbers used as keys from the host go through their string.
    p[1.5] = 'x';
    plain[1.5] = 'x';
    assert.equal(p['1.5'], 'x');
    assert.deepEqual({ ...p }, { ...plain });
  });

  test('numeric-looking keys: an index a guest array cannot hold is a clear, non-fatal error', () => {
    // Reads are as in JavaScript.
    const reads = `
      const r = vmImport(1);
      vmExport(1, () => { const a = [1, 2]; r(a[8192]); r(a[99999]); r(a['8192']); r(a[-1]); r(a['01']); });
    `;
    assertSameAsNode(runBoth(reads));
    const vm = restore(`
      vmExport(1, (k) => { const a = [1, 2]; a[k] = 3; return a.length; });
      vmExport(2, () => [1, 2]);
    `);
    for (const k of [8192, '8192', 99999, -1, '01', 1.5]) {
      assert.throws(() => vm.exports[1](k), isMicroviumError('MVM_E_INVALID_ARRAY_INDEX', /0 to 8191/), `a[${JSON.stringify(k)}] = 3`);
    }
    const a = vm.exports[2]();
    assert.throws(() => { a[8192] = 3; }, isMicroviumError('MVM_E_INVALID_ARRAY_INDEX', /0 to 8191/));
    assert.equal(a[8192], undefined);
    // The VM goes on.
    assert.equal(vm.exports[1](5), 6);
    assert.deepEqual([...a], [1, 2]);
  });

  test('a run-time name beside an integer-valued string in the snapshot is not invalid bytecode', () => {
    // The compiler lists '01' in the string table uninterned; interning a
    // run-time name searched past it, and the check on the string table
    // took that for a corrupted snapshot.
    const vm = restore(`
      vmExport(1, (k) => { const o = {}; o[k] = 1; return o[k]; });
      vmExport(2, (z) => { z['01'] = 1; z.a = 1; z.b = 2; });
    `);
    for (const k of ['!', '00a', 'ab', 'zz']) assert.equal(vm.exports[1](k), 1, k);
  });
});

describe('__proto__', () => {
  test('__proto__: a host object with an own __proto__ key is refused, and nothing is polluted', () => {
    let seen = 0;
    const vm = restore(`
      const seen = vmImport(1);
      vmExport(1, (o) => { seen(); return o.a; });
      vmExport(2, () => 7);
    `, { 1: () => { seen++; } });
    const attacks = [
      JSON.parse('{"a": 1, "__proto__": {"polluted": true}}'),
      { a: 1, nested: JSON.parse('{"__proto__": {"polluted": true}}') },
      [JSON.parse('{"__proto__": 5}')],
      Object.defineProperty(new Error('e'), '__proto__', { value: { polluted: true }, enumerable: true }),
    ];
    for (const attack of attacks) {
      assert.throws(() => vm.exports[1](attack), typeError(/__proto__/));
    }
    assert.equal(seen, 0, 'the guest was not called');
    assert.equal(vm.exports[2](), 7, 'the VM goes on');
    assert.equal({}.polluted, undefined);
    assert.equal(Object.prototype.polluted, undefined);
    // An ordinary object still goes in.
    assert.equal(vm.exports[1]({ a: 3 }), 3);
  });

  test('__proto__: writing it through a proxy or in the guest is a non-fatal error', () => {
    const vm = restore(`
      vmExport(1, () => ({ a: 1 }));
      vmExport(2, (o) => { o.__proto__ = { x: 1 }; return 1; });
      vmExport(3, () => 7);
    `);
    const p = vm.exports[1]();
    assert.throws(() => { p.__proto__ = { x: 1 }; }, isMicroviumError('MVM_E_PROTO_IS_READONLY'));
    assert.throws(() => Object.defineProperty(p, '__proto__', { value: {} }), isMicroviumError('MVM_E_PROTO_IS_READONLY'));
    assert.throws(() => vm.exports[2](p), isMicroviumError('MVM_E_PROTO_IS_READONLY'));
    assert.equal(vm.exports[3](), 7);
    assert.equal(p.a, 1);
    // Read, it is the prototype the proxy reports, as on a host object.
    assert.equal(p.__proto__, Object.getPrototypeOf(p));
  });
});

describe('proxy traps', () => {
  const source = `
    class Point { constructor(x) { this.x = x; } }
    Point.origin = 0;
    vmExport(1, () => ({ a: 1, b: 'two' }));
    vmExport(2, () => [1, 2, 3]);
    vmExport(3, () => Point);
    vmExport(4, (o) => o.a);
  `;

  test('freeze, seal and preventExtensions are refused with a TypeError; the proxy keeps working', () => {
    const vm = restore(source);
    const o = vm.exports[1]();
    const a = vm.exports[2]();
    const C = vm.exports[3]();
    for (const [name, p] of [['object', o], ['array', a], ['class', C]]) {
      for (const op of [Object.freeze, Object.seal, Object.preventExtensions]) {
        assert.throws(() => op(p), typeError(/frozen|sealed|extensible/), `${op.name} on a guest ${name}`);
      }
      assert.throws(() => Reflect.preventExtensions(p), typeError(), name);
      assert.equal(Object.isExtensible(p), true, name);
      assert.equal(Object.isFrozen(p), false, name);
      assert.equal(Object.isSealed(p), false, name);
    }
    // Still fully usable.
    o.c = 3;
    assert.deepEqual(Object.keys(o), ['a', 'b', 'c']);
    assert.equal(JSON.stringify(o), '{"a":1,"b":"two","c":3}');
    assert.equal(vm.exports[4](o), 1);
    a.push(4);
    assert.deepEqual(Object.keys(a), ['0', '1', '2', '3']);
    assert.deepEqual([...a], [1, 2, 3, 4]);
    assert.equal(new C(5).x, 5);
    assert.equal(C.origin, 0);
  });

  test('defineProperty: accessors and non-default attributes are refused before anything changes', () => {
    const vm = restore(source);
    const o = vm.exports[1]();
    const C = vm.exports[3]();
    for (const p of [o, C]) {
      assert.throws(() => Object.defineProperty(p, 'g', { get() { return 1; } }), typeError(/data properties/));
      assert.throws(() => Object.defineProperty(p, 'w', { value: 1, writable: false }), typeError(/data properties/));
      assert.throws(() => Object.defineProperty(p, 'e', { value: 1, enumerable: false }), typeError(/data properties/));
      assert.throws(() => Object.defineProperty(p, 'c', { value: 1, configurable: false }), typeError(/data properties/));
      for (const k of ['g', 'w', 'e', 'c']) assert.equal(k in p, false, k);
      Object.defineProperty(p, 'd', { value: 4, writable: true, enumerable: true, configurable: true });
      assert.equal(p.d, 4);
    }
    // The class's statics live in the guest, not on the host's stand-in.
    assert.equal(vm.exports[4]({ a: C.d }), 4);
    Object.defineProperty(C, 'origin', { value: 9 });
    assert.equal(C.origin, 9);
    assert.equal(C.origin, 9);
    assert.deepEqual(Object.keys(o), ['a', 'b', 'd']);
  });

  test('getOwnPropertyDescriptors, structuredClone and delete leave the proxy working', () => {
    const vm = restore(source);
    const o = vm.exports[1]();
    const plain = { a: 1, b: 'two' };
    assert.deepEqual(Object.getOwnPropertyDescriptors(o), Object.getOwnPropertyDescriptors(plain));
    assert.throws(() => structuredClone(o), (e) => e.name === 'DataCloneError');
    assert.throws(() => { delete o.a; }, typeError(/deleting/));
    assert.throws(() => Reflect.deleteProperty(o, 'a'), typeError(/deleting/));
    const C = vm.exports[3]();
    assert.throws(() => { delete C.origin; }, typeError(/deleting/));
    assert.equal(C.origin, 0);
    assert.deepEqual({ ...o }, plain);
    assert.deepEqual(Object.getOwnPropertyDescriptors(o), Object.getOwnPropertyDescriptors(plain));
    o.z = 1;
    plain.z = 1;
    assert.deepEqual(Object.getOwnPropertyDescriptors(o), Object.getOwnPropertyDescriptors(plain));
  });
});

describe('protocol names', () => {
  const source = `
    const imp = vmImport(1);
    class K {}
    vmExport(1, (name) => { const o = { a: 1 }; o[name] = imp; return o; });
    vmExport(2, (name) => { const o = { a: 1 }; o[name] = () => 'guest ' + name; return o; });
    vmExport(3, (name) => { K[name] = imp; return K; });
    vmExport(4, (o, name) => o[name] === imp);
  `;

  test('protocol names: an import as `then` is not awaited or called, and is invisible from the host', async () => {
    let calls = 0;
    const vm = restore(source, { 1: () => { calls++; } });
    const o = vm.exports[1]('then');
    let settled;
    Promise.resolve(o).then((v) => { settled = v; });
    (async () => await o)().then((v) => { settled = settled === o && v; });
    await tick();
    assert.equal(settled, o, 'awaiting it settles with the object itself');
    assert.equal(calls, 0, 'the import was not called');
    assert.equal(o.then, undefined);
    assert.equal('then' in o, false);
    assert.equal(Object.getOwnPropertyDescriptor(o, 'then'), undefined);
    assert.deepEqual(Object.keys(o), ['a']);
    assert.deepEqual({ ...o }, { a: 1 });
    // The guest still has it.
    assert.equal(vm.exports[4](o, 'then'), true);
    // A class whose static `then` is an import, likewise.
    const K = vm.exports[3]('then');
    assert.equal(K.then, undefined);
    assert.equal(await Promise.resolve(K), K);
    assert.equal(calls, 0);
  });

  test('protocol names: an import as toString, valueOf or toJSON is not called by String() or JSON.stringify', () => {
    let calls = 0;
    const vm = restore(source, { 1: () => { calls++; return 'host'; } });
    for (const name of ['toString', 'valueOf', 'toJSON']) {
      const o = vm.exports[1](name);
      assert.equal(String(o), '[object Object]', name);
      assert.equal(`${o}`, '[object Object]', name);
      assert.equal(o + '', '[object Object]', name);
      assert.equal(JSON.stringify(o), '{"a":1}', name);
      assert.equal(JSON.stringify({ o }), '{"o":{"a":1}}', name);
      assert.deepEqual(Object.keys(o), ['a'], name);
      assert.equal(name in o, name !== 'toJSON', name);
      assert.equal(o[name], Object.prototype[name], name);
      assert.equal(vm.exports[4](o, name), true, name);
    }
    const K = vm.exports[3]('toString');
    assert.equal(K.toString, Function.prototype.toString);
    assert.equal(calls, 0, 'no import was called');
    // Guest functions under these names are used.
    assert.equal(String(vm.exports[2]('toString')), 'guest toString');
    assert.equal(vm.exports[2]('valueOf') + '', 'guest valueOf');
    assert.equal(JSON.stringify({ o: vm.exports[2]('toJSON') }), '{"o":"guest toJSON"}');
    assert.deepEqual(Object.keys(vm.exports[2]('toJSON')), ['a', 'toJSON']);
  });
});

describe('key cache', () => {
  const source = `
    vmExport(1, () => ({}));
    vmExport(2, (o) => o);
    vmExport(3, (n) => { let i = 0; while (i < n) { const o = {}; o['w' + i + '_abcdefgh'] = i; i++; } });
    vmExport(4, (o, k) => o[k]);
  `;

  // Whether names nothing references are collected (the engine's intern
  // table made weak): 300 names interned by the guest alone, then collected.
  function internTableIsWeak() {
    const vm = restore(source);
    vm.runGC(true);
    const before = vm.getMemoryStats().virtualHeapUsed;
    vm.exports[3](300);
    vm.runGC(true);
    const grew = vm.getMemoryStats().virtualHeapUsed - before;
    vm.dispose();
    return grew < 1000;
  }

  test('key cache: 20,000 distinct names shown by the host keep the guest heap bounded', async (t) => {
    const weak = internTableIsWeak();
    const vm = restore(source);
    const stats = () => internals.keyCacheStats(vm);
    const budget = stats().budget;
    assert.ok(budget <= 4096, `budget ${budget}`);
    vm.runGC(true);
    const baseline = vm.getMemoryStats().virtualHeapUsed;
    // Names that get interned (writes, objects passed in) stay in the guest
    // for good while the intern table is strong, and 20,000 of them do not
    // fit in 64 kB: without it, those are fewer, and what is checked is
    // that the cache pins no more than its budget.
    const written = weak ? 20000 : 600;
    let maxPinned = 0;
    const p = vm.exports[1]();
    for (let i = 0; i < 20000; i++) {
      const name = 'name' + i;
      if (i < written) {
        if (i % 2) {
          const o = vm.exports[1]();
          o[name] = i;
          assert.equal(o[name], i);
        } else {
          assert.equal(vm.exports[4]({ [name]: i }, name), i);
        }
      }
      assert.equal(p[name], undefined);
      if (i % 100 === 0) {
        maxPinned = Math.max(maxPinned, stats().pinnedBytes);
        vm.runGC();
      }
    }
    assert.ok(maxPinned <= budget, `the cache pinned ${maxPinned} bytes (budget ${budget})`);
    // The objects the host was given are garbage once V8 has collected
    // their proxies.
    await settle();
    vm.exports[2](0);
    vm.runGC(true);
    const grew = vm.getMemoryStats().virtualHeapUsed - baseline;
    if (weak) {
      t.diagnostic(`the guest heap grew by ${grew} bytes; the cache pins at most ${budget}`);
      assert.ok(grew <= budget + 1024, `the guest heap grew by ${grew} bytes`);
    } else {
      t.diagnostic(`intern table not weak in this build: checked the cache's bound only (heap grew ${grew} bytes for ${written} interned names)`);
    }
  });

  test('key cache: reading missing properties with long names costs no guest heap', () => {
    const vm = restore(source);
    const o = vm.exports[1]();
    o.present = 1;
    const C = vm.exports[2](o);
    vm.runGC(true);
    const before = vm.getMemoryStats().virtualHeapUsed;
    for (let i = 0; i < 200; i++) {
      const name = 'x'.repeat(1000) + i;
      assert.equal(o[name], undefined);
      assert.equal(name in o, false);
      assert.equal(Object.getOwnPropertyDescriptor(o, name), undefined);
      assert.equal(vm.exports[4](C, 'present'), 1);
    }
    vm.runGC(true);
    assert.equal(vm.getMemoryStats().virtualHeapUsed, before);
  });

  test('key cache: names evicted from the cache still read and write the right properties', () => {
    const vm = restore(source);
    const objects = [vm.exports[1](), vm.exports[1]()];
    const models = [new Map(), new Map()];
    let s = 7;
    const rnd = (n) => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      // The low bits of this generator repeat quickly.
      return (s >>> 8) % n;
    };
    // More names than the cache holds, used in a random order, so that
    // names are evicted and come back under new ids.
    const names = Array.from({ length: 400 }, (_, i) => 'property_' + i);
    for (let step = 0; step < 6000; step++) {
      const which = rnd(2);
      const name = names[rnd(names.length)];
      if (rnd(3) === 0) {
        objects[which][name] = step;
        models[which].set(name, step);
      } else {
        assert.equal(objects[which][name], models[which].get(name), `step ${step}: ${name}`);
      }
      if (step === 3000) internals.clearKeyCache(vm);
    }
    for (const i of [0, 1]) {
      assert.deepEqual(new Map(Object.entries(objects[i])), models[i]);
      for (const [k, v] of models[i]) assert.equal(vm.exports[4](objects[i], k), v);
    }
    assert.ok(internals.keyCacheStats(vm).pinnedBytes <= internals.keyCacheStats(vm).budget);
  });

  test('key cache: clearing it unpins every name, and names go on working', () => {
    const vm = restore(source);
    const o = vm.exports[1]();
    for (let i = 0; i < 50; i++) o['k' + i] = i;
    assert.ok(internals.keyCacheStats(vm).entries > 0);
    internals.clearKeyCache(vm);
    assert.equal(internals.keyCacheStats(vm).entries, 0);
    assert.equal(internals.keyCacheStats(vm).pinnedBytes, 0);
    for (let i = 0; i < 50; i++) assert.equal(o['k' + i], i);
    o.k0 = 'again';
    assert.equal(vm.exports[4](o, 'k0'), 'again');
  });
});

describe('own-key lookups', () => {
  test('`in` and getOwnPropertyDescriptor look up one key, allocating nothing in the guest', () => {
    const vm = restore(`
      vmExport(1, (n) => { const o = {}; let i = 0; while (i < n) { o['key' + i] = i; i++; } return o; });
    `);
    const o = vm.exports[1](300);
    o.key0;
    vm.runGC(true);
    const before = vm.getMemoryStats().virtualHeapUsed;
    for (let i = 0; i < 300; i += 7) {
      assert.equal('key' + i in o, true);
      assert.deepEqual(Object.getOwnPropertyDescriptor(o, 'key' + i), { value: i, writable: true, enumerable: true, configurable: true });
    }
    assert.equal('missing' in o, false);
    assert.equal(vm.getMemoryStats().virtualHeapUsed, before);
  });

  test('Object.keys, spread, JSON.stringify and hasOwn of a guest object match a plain object', () => {
    const vm = restore(`
      class P { constructor() { this.own = 1; } }
      P.prototype.inherited = 2;
      vmExport(1, (n) => { const o = {}; let i = 0; while (i < n) { o['key' + i] = i; i++; } o[5] = 'five'; return o; });
      vmExport(2, () => new P());
    `);
    const o = vm.exports[1](200);
    const plain = {};
    for (let i = 0; i < 200; i++) plain['key' + i] = i;
    plain[5] = 'five';
    assert.deepEqual(Object.keys(o), Object.keys(plain));
    assert.deepEqual({ ...o }, { ...plain });
    assert.equal(JSON.stringify(o), JSON.stringify(plain));
    assert.equal(Object.hasOwn(o, 'key199'), true);
    assert.equal(Object.hasOwn(o, '5'), true);
    assert.equal(Object.hasOwn(o, 'key200'), false);
    // Inherited guest properties are not own.
    const instance = vm.exports[2]();
    assert.equal(instance.inherited, 2);
    assert.equal(Object.hasOwn(instance, 'inherited'), false);
    assert.equal(Object.hasOwn(instance, 'own'), true);
    assert.deepEqual(Object.keys(instance), ['own']);
  });
});
