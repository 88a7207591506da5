'use strict';
// Async: async imports awaited by the guest, guest async
// functions and promises as host Promises, no unhandled rejections, no
// leaked handles.

const test = require('node:test');
const assert = require('node:assert/strict');
const Microvium = require('..');
const { compile, tick, gc } = require('./helpers');

const liveHandles = (vm) => Microvium.__internals.liveHandles(vm);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function settleAndCollect() {
  for (let i = 0; i < 4; i++) {
    await sleep(2);
    gc();
    await tick();
  }
}

// Every unhandled rejection in this file is a failure (checked at the end).
const unhandled = [];
process.on('unhandledRejection', (reason) => { unhandled.push(reason); });

const SRC = `
  const fetchIt = vmImport(1);
  const failIt = vmImport(2);
  const pend = vmImport(3);
  const failWith = vmImport(4);
  vmExport(1, async (x) => { const v = await fetchIt(x); return v + 1; });
  vmExport(2, async () => { try { await failIt(); return 'no'; } catch (e) { return 'caught:' + e.message; } });
  vmExport(3, async (x) => { if (x) throw { message: 'guest boom', code: 7 }; return { v: 'fine' }; });
  vmExport(4, async () => { await failIt(); return 'unreachable'; });
  vmExport(5, async () => { const v = await pend(); return 'got:' + v; });
  vmExport(6, async (x) => { try { await failWith(x); return 'no'; } catch (e) { return e; } });
  vmExport(7, async () => { const a = await fetchIt(1); const b = await fetchIt(a); const c = await fetchIt(b); return [a, b, c]; });
`;

let pendingResolve;
function makeVM() {
  return Microvium.restore(compile(SRC), {
    1: async (x) => { await sleep(1); return x * 2; },
    2: async () => { await null; throw new Error('host boom'); },
    3: async () => new Promise((r) => { pendingResolve = r; }),
    4: async (x) => { await null; throw x; },
  });
}

test('an async import is awaited by a guest async function', async () => {
  const vm = makeVM();
  const p = vm.exports[1](5);
  assert.ok(p instanceof Promise);
  assert.equal(Object.getPrototypeOf(p), Promise.prototype);
  assert.equal(await p, 11);
  assert.deepEqual(await vm.exports[7](), [2, 4, 8]);
});

test('the guest resumes only when the host promise settles', async () => {
  const vm = makeVM();
  let result = 'pending';
  const p = vm.exports[5]().then((v) => { result = v; });
  await sleep(20);
  assert.equal(result, 'pending');
  pendingResolve('late');
  await p;
  assert.equal(result, 'got:late');
});

test('a rejected async import is a catchable guest exception', async () => {
  const vm = makeVM();
  assert.equal(await vm.exports[2](), 'caught:host boom');
  // Non-Error rejection values reach the guest catch too.
  assert.equal(await vm.exports[6]('plain string'), 'plain string');
  assert.equal(await vm.exports[6](42), 42);
});

test('an uncaught rejected async import rejects the host Promise', async () => {
  const vm = makeVM();
  const p = vm.exports[4]();
  assert.ok(p instanceof Promise);
  // The rejection went through the guest: it is the guest's copy of the error.
  await assert.rejects(p, (e) => e.message === 'host boom' && e.name === 'Error');
});

test('a promise-returning import marked with ASYNC_IMPORT is awaited', async () => {
  assert.equal(Microvium.ASYNC_IMPORT, Symbol.for('microvium.asyncImport'));
  const later = (x) => new Promise((r) => setTimeout(() => r(x + '!'), 2));
  later[Microvium.ASYNC_IMPORT] = true;
  const vm = Microvium.restore(compile(`
    const later = vmImport(1);
    vmExport(1, async (x) => (await later(x)) + '?');
  `), { 1: later });
  assert.equal(await vm.exports[1]('a'), 'a!?');
});

test('a guest async function called by the host returns a real Promise', async () => {
  const vm = makeVM();
  const ok = vm.exports[3](false);
  assert.ok(ok instanceof Promise);
  const v = await ok;
  assert.equal(v.v, 'fine');
  const bad = vm.exports[3](true);
  assert.ok(bad instanceof Promise);
  await assert.rejects(bad, (e) => e.message === 'guest boom' && e.code === 7);
});

test('a guest promise that comes out as a result, an argument or a property is a Promise', async () => {
  let got;
  const vm = Microvium.restore(compile(`
    const take = vmImport(1);
    vmExport(1, () => (async () => 1)());
    vmExport(2, () => { take((async () => 'arg')()); });
    vmExport(3, () => ({ p: (async () => { throw 'rejected'; })(), q: (async () => 'q')() }));
    const kept = (async () => 8)();
    vmExport(4, () => kept);
  `), { 1: (p) => { got = p; } });
  const r = vm.exports[1]();
  assert.ok(r instanceof Promise);
  assert.equal(await r, 1);
  vm.exports[2]();
  assert.ok(got instanceof Promise);
  assert.equal(await got, 'arg');
  const o = vm.exports[3]();
  assert.ok(o.p instanceof Promise);
  assert.ok(o.q instanceof Promise);
  assert.equal(await o.q, 'q');
  await assert.rejects(o.p, (e) => e === 'rejected');
  const k = vm.exports[4]();
  assert.ok(k instanceof Promise);
  assert.equal(vm.exports[4](), k, 'the same guest promise is the same host Promise');
  assert.equal(await k, 8);
});

test('a guest promise exported directly (vmExport(id, promise)) is a Promise', async () => {
  const vm = Microvium.restore(compile(`
    vmExport(7, (async () => 7)());
    const p8 = (async () => 8)();
    vmExport(8, () => p8);
    vmExport(9, () => (async () => 9)());
  `));
  assert.ok(vm.exports[8]() instanceof Promise, 'the same kind of promise returned by a function is a Promise');
  const p = vm.exports[7];
  assert.ok(p instanceof Promise, `vm.exports[7] is ${require('node:util').inspect(p)}, not a Promise`);
  assert.equal(await p, 7);
});

test('ignored rejections of guest promises are not reported as unhandled', async () => {
  const vm = makeVM();
  vm.exports[4](); // rejects with the host error, nobody listens
  vm.exports[3](true); // rejects with a guest object, nobody listens
  const o = Microvium.restore(compile(`vmExport(1, () => ({ p: (async () => { throw 'x'; })() }));`)).exports[1]();
  void o.p;
  await settleAndCollect();
  await sleep(20);
  assert.deepEqual(unhandled, []);
});

test('no handles leak once async calls settle and are collected', async () => {
  const vm = makeVM();
  const f1 = vm.exports[1];
  const f2 = vm.exports[2];
  const f3 = vm.exports[3];
  const f4 = vm.exports[4];
  const f6 = vm.exports[6];
  await settleAndCollect();
  const base = liveHandles(vm);
  assert.equal(typeof base, 'number');
  for (let i = 0; i < 30; i++) assert.equal(await f1(i), i * 2 + 1);
  for (let i = 0; i < 30; i++) assert.equal(await f2(), 'caught:host boom');
  for (let i = 0; i < 30; i++) {
    await assert.rejects(f3(true));
    assert.equal((await f3(false)).v, 'fine');
  }
  for (let i = 0; i < 30; i++) f4();
  for (let i = 0; i < 30; i++) await f6({ message: 'obj' });
  await settleAndCollect();
  assert.equal(liveHandles(vm), base);
  assert.deepEqual(unhandled, []);
});

test('a VM disposed while the guest awaits a host promise: no crash, no unhandled rejection', async () => {
  const vm = makeVM();
  const p = vm.exports[5]();
  let state = 'pending';
  p.then((v) => { state = ['resolved', v]; }, (e) => { state = ['rejected', e]; });
  vm.dispose();
  pendingResolve('after dispose');
  await settleAndCollect();
  assert.notDeepEqual(state, ['resolved', 'got:after dispose'], 'the disposed guest must not resume');
  if (state !== 'pending') {
    assert.equal(state[0], 'rejected');
    assert.match(String(state[1] && state[1].message), /dispos/i);
  }
  assert.deepEqual(unhandled, []);
});

test('an async import called by a script without await: a catchable MVM_E_ASYNC_WITHOUT_AWAIT, the host function is not called', async () => {
  // The engine can give the guest a promise only if the script has await
  // points; the host's promise cannot cross either, so its rejection would
  // have gone unhandled (ending a Node process that has no handler).
  let calls = 0;
  const vm = Microvium.restore(compile(`
    const h = vmImport(1);
    vmExport(1, () => { try { h(1); return 'no error'; } catch (e) { return e.message + ' / ' + e.detail; } });
    vmExport(2, () => h(2));
  `), { 1: async () => { calls++; throw new Error('rejected by the host'); } });
  assert.match(vm.exports[1](), /MVM_E_ASYNC_WITHOUT_AWAIT.*import 1 is async.*not called/);
  assert.throws(() => vm.exports[2](), (e) => e instanceof Microvium.MicroviumError && e.code === 'MVM_E_ASYNC_WITHOUT_AWAIT');
  assert.equal(calls, 0);
  assert.match(vm.exports[1](), /MVM_E_ASYNC_WITHOUT_AWAIT/, 'the VM goes on');
  await settleAndCollect();
  assert.deepEqual(unhandled, []);
});

test('a promise returned by an import not marked async: a TypeError in the guest, and its rejection is not unhandled', async () => {
  const vm = Microvium.restore(compile(`
    const h = vmImport(1);
    vmExport(1, () => { try { h(); return 'no error'; } catch (e) { return e.message; } });
  `), { 1: () => Promise.reject(new Error('rejected by the host')) });
  assert.match(vm.exports[1](), /Cannot pass a Promise/);
  await settleAndCollect();
  assert.deepEqual(unhandled, []);
});

test('a promise derived from one that settled with a guest object, when the VM is disposed meanwhile: no unhandled rejection', async () => {
  // The derived promise reads `then` of the guest object in a microtask, by
  // which time the VM is gone; that read must not reject it.
  for (const source of ['vmExport(1, async () => ({ a: 1 }));', 'class C {} vmExport(1, async () => C);']) {
    const vm = Microvium.restore(compile(source + ' vmExport(2, async () => { await 0; });'), {});
    const p = vm.exports[1]();
    const derived = p.catch(() => 'rejected');
    vm.dispose();
    const v = await derived;
    assert.notEqual(v, 'rejected', 'the guest promise had settled before the dispose');
    assert.ok(v !== null && (typeof v === 'object' || typeof v === 'function'), source);
    assert.throws(() => v.a, /dispos/i, 'an explicit read still reports the disposed VM');
  }
  await settleAndCollect();
  assert.deepEqual(unhandled, []);
});

test('no unhandled rejections during this file', async () => {
  await settleAndCollect();
  assert.deepEqual(unhandled, []);
});
