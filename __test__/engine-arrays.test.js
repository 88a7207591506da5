'use strict';
// Arrays, arguments and Uint8Arrays: what microvium 8.0.0 got wrong there,
// each fixed by a patch in c/patches/ (named in each describe) or in the
// host. What the guest computes is compared with plain Node.js running the
// same source (helpers.runBoth); what only the engine can say (its limits)
// is checked directly, and host-side behaviour against a plain host array.
//
// Guest notes: the compiler runs top-level code at compile time, so the
// programs below build their data inside the exported function.

const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const { compile, runBoth, runIsolated } = require('./helpers.js');
const Microvium = require('..');

/** Asserts the guest reports (and returns) what Node does for the same program. */
function agrees(body, opts) {
  const source = `const report = vmImport(1);\n${body}`;
  const { node, guest } = runBoth(source, opts);
  assert.deepEqual(guest, node);
  return node;
}

function restore(source, imports = {}) {
  return Microvium.restore(compile(source), imports);
}

/** Asserts fn throws a MicroviumError with this code; returns it. */
function throwsMvm(fn, code) {
  let error;
  assert.throws(fn, (e) => { error = e; return true; });
  assert.ok(error instanceof Microvium.MicroviumError, `expected a MicroviumError ${code}, got ${error && error.message}`);
  assert.equal(error.code, code, error.message);
  return error;
}

const params = (n) => Array.from({ length: n }, (_, i) => 'p' + i).join(', ');

describe('parameters past the 15th (load-arg-2.patch)', () => {
  test('a function reads its 16th and later parameters, and undefined past its arguments', () => {
    agrees(`
      function many(${params(20)}) {
        report(p15); report(p16); report(p19);
        return p0 + p16;
      }
      vmExport(1, (${params(18)}) => {
        report(p17);
        report(many(${Array.from({ length: 17 }, (_, i) => i * 10).join(', ')}));
        report(many(1, 2));
        return many(p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15, p16, p17);
      });
    `, { args: Array.from({ length: 17 }, (_, i) => i + 1) });
  });
});

describe('how long an array can grow (array-growth-limit.patch)', () => {
  test('push and index writes grow an array past 1,024 items, to 2,047', () => {
    agrees(`
      vmExport(1, () => {
        const a = [];
        let i = 0;
        while (i < 2047) { a.push(i * 2); i++; }
        report(a.length); report(a[1024]); report(a[2046]);
        const b = [];
        i = 0;
        while (i < 2047) { b[i] = i; i++; }
        report(b.length); report(b[1500]); report(b[2046]);
        const c = [];
        c[2046] = 'last';
        report(c.length); report(c[2046]); report(c[1000]);
      });
    `);
  });

  test('past 2,047 items: MVM_E_ARRAY_TOO_LONG naming the limit, the array unchanged, the VM goes on', () => {
    const vm = restore(`
      let a;
      vmExport(1, () => { a = []; let i = 0; while (i < 2047) { a.push(i); i++; } return a.length; });
      vmExport(2, () => a.push('x'));
      vmExport(3, () => { a[2047] = 'x'; });
      vmExport(4, () => { a[5000] = 'x'; });
      vmExport(5, () => { a.length = 2048; });
      vmExport(6, () => { a.length = 2046; return a.push('y', 'z'); });
      vmExport(7, () => '' + a.length + ',' + a[0] + ',' + a[2045] + ',' + a[2046]);
      vmExport(8, (x) => x + 1);
    `);
    assert.equal(vm.exports[1](), 2047);
    for (const i of [2, 3, 4, 5, 6]) {
      const e = throwsMvm(() => vm.exports[i](), 'MVM_E_ARRAY_TOO_LONG');
      assert.match(e.detail, /2047 items/);
      assert.doesNotMatch(e.message, /fatal/i);
      assert.equal(vm.exports[7](), i === 6 ? '2046,0,2045,undefined' : '2047,0,2045,2046', `export ${i}`);
    }
    assert.equal(vm.exports[8](1), 2);
  });
});

describe('assigning an array length (array-length-assignment.patch)', () => {
  test('the current length, truncation, growth, holes and appending, as in JavaScript', () => {
    agrees(`
      vmExport(1, () => {
        const a = [1, 2, 3];
        a.length = a.length; report(a.length);
        const e = []; e.length = 0; report(e.length);
        a.length = 1; report(a.length); report(a[1]); report(a[2]);
        a.length = 4; report(a.length); report(a[1]); report(a[3]);
        a[a.length] = 'appended'; report(a.length); report(a[4]);
        a[7] = 'far'; report(a.length); report(a[6]);
        a.length = -0; report(a.length);
        a.length = 2.0; report(a.length); report(a[0]);
      });
    `);
  });

  test('a length that is not a whole number from 0 is MVM_E_RANGE_ERROR, not fatal', () => {
    const vm = restore(`
      const a = [1, 2];
      vmExport(1, (n) => { a.length = n; return a.length; });
      vmExport(2, () => a.length);
    `);
    for (const n of [1.5, -1, NaN, -Infinity, 2 ** 32, undefined]) {
      // A host array throws RangeError for the same values.
      assert.throws(() => { [].length = n; }, RangeError);
      throwsMvm(() => vm.exports[1](n), 'MVM_E_RANGE_ERROR');
      assert.equal(vm.exports[2](), 2);
    }
    assert.equal(vm.exports[1](1), 1);
  });
});

describe('array indexes and property keys (property-keys.patch)', () => {
  test('array reads at negative, fractional, string and large indexes, as in JavaScript', () => {
    agrees(`
      vmExport(1, (big) => {
        const a = [10, 20, 30];
        report(a[-1]); report(a[1.5]); report(a['1']); report(a['01']); report(a['-0']);
        report(a[8192]); report(a[10000]); report(a[big]); report(a[-0]);
        const k = '' + 2;
        report(a[k]);
        report(a.missing);
      });
    `, { args: [1e10] });
  });

  test('numbers, numeric strings and other primitives as object keys, as in JavaScript', () => {
    agrees(`
      vmExport(1, () => {
        const o = {};
        o[-1] = 'minus one'; report(o['-1']); report(o[-1]);
        o[1.5] = 'one and a half'; report(o['1.5']);
        o['2'] = 'two'; report(o[2]);
        o[-0] = 'zero'; report(o[0]); report(o['0']);
        o[10000] = 'ten thousand'; report(o['10000']); report(o['1' + '0000']);
        o['007'] = 'agent'; report(o[7]); report(o['007']);
        o[true] = 'yes'; report(o['true']);
        o[null] = 'nothing'; report(o.null);
        o[undefined] = 'unknown'; report(o['undefined']);
        report(o[3]);
      });
    `);
  });

  test('a numeric-looking string literal and a property name built at run time, in one program', () => {
    // The compiler lists '1' in the string table as a plain string, which
    // the checks on snapshots took for a corrupt entry when a name built at
    // run time was looked up there (c/engine.c).
    agrees(`
      vmExport(1, (x) => {
        report('1');
        const o = { xy: 3 };
        report(o[x + 'y']);
        report(o['1' + 'x']);
      });
    `, { args: ['x'] });
  });

  test('an index an array cannot hold: a non-fatal MVM_E_INVALID_ARRAY_INDEX, the array unchanged', () => {
    const vm = restore(`
      const a = [1, 2];
      vmExport(1, (k) => { a[k] = 'x'; });
      vmExport(2, () => '' + a.length + ',' + a[0] + ',' + a[1]);
    `);
    // A host array would have a property "-1", "1.5" or "x"; a Microvium
    // array holds only indexes and its length.
    for (const k of [-1, 1.5, 'x', 8192]) {
      throwsMvm(() => vm.exports[1](k), 'MVM_E_INVALID_ARRAY_INDEX');
      assert.equal(vm.exports[2](), '2,1,2');
    }
  });

  test('Uint8Array reads at names that are not its indexes give undefined, as in JavaScript', () => {
    agrees(`
      vmExport(1, (u) => {
        report(u[-1]); report(u[1.5]); report(u[3]); report(u[10000]); report(u.foo); report(u[1]);
      });
    `, { args: [new Uint8Array([7, 8, 9])] });
  });
});

describe('push (array-push.patch)', () => {
  test('push appends every argument and returns the new length', () => {
    agrees(`
      vmExport(1, () => {
        const a = [1, 2, 3];
        report(a.push(4));
        report(a.push(5, 6, 7));
        report(a.push());
        report(a.length); report(a[4]); report(a[6]);
        const nested = [];
        report(nested.push([1], [2, 3]) + nested[1].push(4));
        report(nested[1].length);
        report(typeof a.push);
        report(a.push === nested.push);
      });
    `);
  });

  test('an array passed in from the host has push, in a program with no array literal', () => {
    // Each run (Node's, then the guest's) gets its own [1, 2, 3]: runBoth
    // spreads args into each call, and Node's run pushes into its array.
    const args = { *[Symbol.iterator]() { yield [1, 2, 3]; } };
    agrees(`
      vmExport(1, (a) => {
        report(a.push(4, 5));
        report(a.length); report(a[4]);
        report(typeof a.push);
        report(a.foo);
        return a.length;
      });
    `, { args });
  });

  test("the engine's push, returned to the host, is a function there", () => {
    const { node, guest, vm } = runBoth(`vmExport(1, () => { const a = [1]; return a.push; });`);
    assert.equal(typeof guest.result, typeof node.result);
    // Called without an array as `this`: an error, as in JavaScript, and
    // not a fatal one.
    const [nodePush, guestPush] = [node.result, guest.result];
    assert.throws(() => nodePush(1), (e) => e.name === 'TypeError'); // (another realm's)
    throwsMvm(() => guestPush(1), 'MVM_E_TYPE_ERROR');
    assert.equal(typeof vm.exports[1](), 'function');
  });

  test('a push the program puts on the array prototype is the one used', () => {
    agrees(`
      vmExport(1, () => {
        const a = [1];
        report(a.push(2));
        const proto = [].__proto__;
        proto.push = function (x) { return 'own push of ' + x; };
        report(a.push(3));
        report(a.length);
      });
    `);
  });
});

describe('Reflect.ownKeys (object-keys-order.patch)', () => {
  const BUILD = `
    function build() {
      const o = { b: 1 };
      o[5] = 'five'; o.a = 2; o[1] = 'one'; o['10000'] = 'big'; o[-1] = 'minus';
      o[2] = 'two'; o[1.5] = 'frac'; o['01'] = 'padded'; o[4294967294] = 'max index';
      o[4294967295] = 'not an index';
      return o;
    }
  `;

  test('array-index keys ascending first, then the other names in insertion order, all strings', () => {
    agrees(`
      ${BUILD}
      vmExport(1, () => {
        const o = build();
        const keys = Reflect.ownKeys(o);
        let i = 0;
        while (i < keys.length) { report(keys[i]); report(typeof keys[i]); report(o[keys[i]]); i++; }
        report(Reflect.ownKeys({}).length);
      });
    `);
  });

  test("the host sees a guest object's keys in the order of the same host object", () => {
    const { node, guest } = runBoth(`${BUILD}\nvmExport(1, build);`);
    assert.ok(guest.result && node.result);
    assert.deepEqual(Object.keys(guest.result), Object.keys(node.result));
    assert.equal(JSON.stringify(guest.result), JSON.stringify(node.result));
  });
});

describe('zero-length Uint8Arrays (zero-size-allocations.patch)', () => {
  // Isolated: before the fix, a collection corrupted the heap (and could
  // then allocate without end).
  function isolated(code) {
    const r = runIsolated(code + `\nconsole.log('OK');`, { timeout: 30000 });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /OK/);
  }

  test('made by the guest or passed in by the host, they survive collections, identity kept', () => {
    isolated(`
      const vm = Microvium.restore(compile(\`
        const keep = [];
        vmExport(1, () => { const u = Microvium.newUint8Array(0); keep.push(u); keep.push(u); keep.push({ n: keep.length }); });
        vmExport(2, (x) => { keep.push(x); keep.push(x); keep.push({ n: x.length }); });
        vmExport(3, () => {
          let i = 0;
          while (i < keep.length) {
            if (keep[i].length !== 0 || keep[i] !== keep[i + 1] || keep[i + 2].n === undefined) return 'bad at ' + i;
            i += 3;
          }
          return keep.length;
        });
        vmExport(4, () => keep[0]);
      \`), {});
      const first = (() => { vm.exports[1](); return vm.exports[4](); })();
      for (let round = 0; round < 40; round++) {
        vm.exports[1]();
        vm.exports[2](round % 2 ? Buffer.alloc(0) : new Uint8Array(0));
        if (round % 10 === 0) vm.runGC(round % 20 === 0);
      }
      vm.runGC(); vm.runGC(true);
      assert.equal(vm.exports[3](), 81 * 3);
      assert.equal(vm.exports[4](), first);
      assert.equal(first.length, 0);
      assert.deepEqual(Array.from(first.slice()), []);
    `);
  });

  test('compiled into a snapshot, and through createSnapshot and restore', () => {
    isolated(`
      // The compiler writes zero-length Uint8Arrays into the snapshot's heap
      // with nothing after their header: here one in the middle of the heap
      // and one at its end.
      const source = \`
        let mid = Microvium.newUint8Array(0);
        let bytes = Microvium.newUint8Array(4);
        const keep = [];
        vmExport(1, () => { bytes[0] = 1; keep.push(mid); keep.push({ n: keep.length }); return keep.length; });
        vmExport(2, () => mid.length + bytes.length + (keep[0] === mid ? 10 : 0));
        let last = Microvium.newUint8Array(0);
        vmExport(3, () => last);
      \`;
      {
        const vm = Microvium.restore(compile(source), {});
        for (let i = 0; i < 300; i++) vm.exports[1]();
        vm.runGC();
        assert.equal(vm.exports[2](), 14);
        assert.equal(vm.exports[3]().length, 0);
        const again = Microvium.restore(vm.createSnapshot(), {});
        again.runGC(true);
        for (let i = 0; i < 300; i++) again.exports[1]();
        again.runGC();
        assert.equal(again.exports[2](), 14);
        assert.equal(again.exports[3]().length, 0);
        const third = Microvium.restore(again.createSnapshot(), {});
        assert.equal(third.exports[2](), 14);
      }
    `);
  });
  test('at the end of a snapshot heap over 32 kB', () => {
    isolated(`
      const snapshot = compile(\`
        const keep = [];
        const more = [];
        let i = 0;
        while (i < 1500) { keep.push({ a: i }); more.push({ b: i }); i++; }
        let last = Microvium.newUint8Array(0);
        vmExport(1, () => { more.push({ c: 1 }); return last.length + keep.length + keep[1499].a; });
        vmExport(2, () => last);
      \`);
      assert.ok(snapshot.length > 32768, 'heap size');
      const vm = Microvium.restore(snapshot, {});
      const last = vm.exports[2]();
      for (let i = 0; i < 3; i++) {
        assert.equal(vm.exports[1](), 2999);
        vm.runGC();
      }
      assert.equal(vm.exports[2](), last);
      assert.equal(last.length, 0);
    `);
  });
});

describe('host proxies of guest arrays (lib/membrane.js)', () => {
  const SRC = `
    vmExport(1, () => [1, 2, 3]);
    vmExport(2, (a) => '' + a.length + ':' + a[0] + ',' + a[1] + ',' + a[2]);
    vmExport(3, (x) => x + 1);
  `;

  test('length and index writes past the engine limit: MVM_E_ARRAY_TOO_LONG, the VM goes on', () => {
    const vm = restore(SRC);
    const p = vm.exports[1]();
    const e = throwsMvm(() => { p.length = 3000; }, 'MVM_E_ARRAY_TOO_LONG');
    assert.match(e.detail, /2047 items/);
    throwsMvm(() => { p[2100] = 1; }, 'MVM_E_ARRAY_TOO_LONG');
    throwsMvm(() => { p.length = 9000; }, 'MVM_E_ARRAY_TOO_LONG');
    assert.equal(vm.exports[2](p), '3:1,2,3');
    p.length = 2047;
    assert.equal(p.length, 2047);
    assert.equal(vm.exports[3](1), 2);
  });

  test('a length converts as for a host array: RangeError unless a whole number', () => {
    const vm = restore(SRC);
    for (const v of [1.5, -1, NaN, 2 ** 32, 'x', {}, '2', 2, true, null, '0x3', [1]]) {
      const host = [1, 2, 3];
      const p = vm.exports[1]();
      let hostError;
      let guestError;
      try { host.length = v; } catch (e) { hostError = e; }
      try { p.length = v; } catch (e) { guestError = e; }
      assert.equal(guestError && guestError.constructor, hostError && hostError.constructor, `length = ${String(v)}`);
      assert.equal(p.length, host.length, `length = ${String(v)}`);
      assert.deepEqual([...p], [...host]);
    }
  });

  test('push and setting the current length through a proxy, as on a host array', () => {
    const vm = restore(SRC);
    const p = vm.exports[1]();
    const host = [1, 2, 3];
    assert.equal(p.push(4, 5), host.push(4, 5));
    p.length = p.length;
    host.length = host.length;
    assert.deepEqual([...p], host);
    p.length = 2;
    host.length = 2;
    assert.deepEqual([...p], host);
    assert.equal(vm.exports[2](p), '2:1,2,undefined');
  });
});
