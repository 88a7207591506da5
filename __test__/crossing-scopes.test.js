'use strict';
// Guest→host crossings share Node-API handle scopes (one per engine call,
// renewed every 64 crossings: see crossing_scope in src/runtime.rs). These
// programs cross many times, at several nesting depths, with values of
// every kind, exceptions and async imports in between; what they compute
// must be what Node computes running the same source, and the handles of
// a long crossing loop must not pile up.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const vmModule = require('node:vm');
const Microvium = require('..');
const { compile } = require('./helpers');

// Runs `source` in Node and in the addon with the imports `makeImports(self)`
// gives (self.exports is the instance's exports, for calls back into it),
// calls export 1 with `args`, and returns both results.
function both(source, makeImports, args = []) {
  const nodeSelf = { exports: {} };
  const nodeImports = makeImports(nodeSelf);
  const context = vmModule.createContext({
    vmImport: (id) => nodeImports[id],
    vmExport: (id, value) => { nodeSelf.exports[id] = value; },
  });
  vmModule.runInContext(source, context);
  const node = nodeSelf.exports[1](...args);

  const guestSelf = { exports: {} };
  const vm = Microvium.restore(compile(source), makeImports(guestSelf));
  guestSelf.exports = vm.exports;
  const guest = vm.exports[1](...args);
  return { node, guest, vm };
}

test('thousands of crossings returning strings, objects and numbers agree with Node', () => {
  const src = `
    const pick = vmImport(1);
    vmExport(1, (n) => {
      let text = '';
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const v = pick(i);
        if (typeof v === 'string') text = v + '/' + i;
        else if (typeof v === 'number') sum = sum + v;
        else sum = sum + v.k.length;
      }
      return text + ':' + sum;
    });`;
  const imports = () => ({
    1: (i) => (i % 3 === 0 ? 's' + i : i % 3 === 1 ? i * 0.5 : { k: [i, i] }),
  });
  for (const n of [1, 63, 64, 65, 128, 129, 5000]) {
    const { node, guest } = both(src, imports, [n]);
    assert.equal(guest, node, `n = ${n}`);
  }
});

test('crossings at several depths: host functions that call back into the VM', () => {
  const src = `
    const down = vmImport(1);
    const leaf = vmImport(2);
    function inner(depth, k) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc = acc + leaf(depth * 1000 + i);
      return depth > 0 ? acc + down(depth - 1, k) : acc;
    }
    vmExport(2, inner);
    vmExport(1, (depth, k) => inner(depth, k));`;
  const imports = (self) => ({
    1: (depth, k) => self.exports[2](depth, k),
    2: (x) => x % 97,
  });
  for (const [depth, k] of [[1, 70], [3, 64], [5, 65], [8, 130]]) {
    const { node, guest } = both(src, imports, [depth, k]);
    assert.equal(guest, node, `depth ${depth}, ${k} crossings each`);
  }
});

test('host exceptions caught by the guest between crossings', () => {
  const src = `
    const risky = vmImport(1);
    vmExport(1, (n) => {
      let seen = '';
      for (let i = 0; i < n; i++) {
        try { seen = seen + risky(i) + ','; } catch (e) { seen = seen + 'E' + e.message + ','; }
      }
      return seen;
    });`;
  const imports = () => ({
    1: (i) => { if (i % 7 === 3) throw new Error('bad' + i); return 'ok' + i; },
  });
  const { node, guest } = both(src, imports, [300]);
  assert.equal(guest, node);
});

test('a host function that reads host values of earlier crossings keeps them valid', () => {
  // Objects that came out of the VM in crossing k are still usable in
  // crossing k + 100 (their handles are not tied to a crossing's scope).
  const src = `
    const keep = vmImport(1);
    const check = vmImport(2);
    vmExport(1, (n) => {
      for (let i = 0; i < n; i++) keep({ i: i, s: 'v' + i });
      return check();
    });`;
  const imports = () => {
    const kept = [];
    return {
      1: (o) => { kept.push(o); },
      2: () => kept.map((o) => o.i + o.s).join('|'),
    };
  };
  const { node, guest } = both(src, imports, [300]);
  assert.equal(guest, node);
});

test('async imports awaited in a loop, many crossings per resume', async () => {
  const src = `
    const wait = vmImport(1);
    const note = vmImport(2);
    vmExport(1, async (n) => {
      let total = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < 70; j++) total = total + note(j);
        total = total + await wait(i);
      }
      return total;
    });`;
  const imports = () => ({ 1: async (i) => i * 2, 2: (j) => j & 3 });
  const { node, guest } = both(src, imports, [10]);
  assert.equal(await guest, await node);
});

test('a million crossings in one call: handles do not pile up', () => {
  const src = `
    const f = vmImport(1);
    vmExport(1, (n) => { let last = ''; for (let i = 0; i < n; i++) last = f(i); return last; });`;
  const vm = Microvium.restore(compile(src), { 1: (i) => 'item ' + (i & 255) });
  vm.exports[1](1000);
  const before = process.memoryUsage().rss;
  assert.equal(vm.exports[1](1000000), 'item 63');
  const grown = process.memoryUsage().rss - before;
  // A handle per crossing kept to the end would be tens of MB. (AddressSanitizer
  // builds keep freed memory in quarantine.)
  if (!process.env.ASAN_SKIP_RSS) {
    assert.ok(grown < 16 * 1024 * 1024, `RSS grew by ${(grown / 1048576).toFixed(1)} MB`);
  }
});
