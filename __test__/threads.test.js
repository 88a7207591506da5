'use strict';
// Threads: VMs in several worker_threads at once, workers
// exiting with live VMs, and VM values refusing to cross threads.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Worker, MessageChannel } = require('node:worker_threads');
const Microvium = require('..');
const { compile, runIsolated, root, gc } = require('./helpers');

const SRC = `
  const host = vmImport(1);
  let n = 0;
  let obj = { a: 1, list: [1, 2, 3] };
  vmExport(1, () => { n = n + 1; return n; });
  vmExport(2, () => obj);
  vmExport(3, (x) => host(x) + 1);
  vmExport(4, () => { while (true) { n = n + 1; } });
`;

function runWorker(code, workerData) {
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `const Microvium = require(${JSON.stringify(root)});\n` +
      `const { parentPort, workerData } = require('node:worker_threads');\n${code}`,
      { eval: true, workerData });
    const messages = [];
    w.on('message', (m) => messages.push(m));
    w.on('error', reject);
    w.on('exit', (code) => resolve({ code, messages }));
  });
}

test('VMs run in several worker threads at once, each with its own VMs', async () => {
  const bytes = compile(SRC);
  const code = `
    const vms = [];
    for (let i = 0; i < 5; i++) vms.push(Microvium.restore(workerData.bytes, { 1: (x) => x * workerData.id }));
    let total = 0;
    for (let k = 0; k < 2000; k++) for (const vm of vms) total += vm.exports[1]();
    const o = vms[0].exports[2]();
    o.a = workerData.id;
    vms[0].runGC();
    parentPort.postMessage({
      id: workerData.id, total, a: vms[0].exports[2]().a, list: [...o.list],
      host: vms[1].exports[3](10), ev: Microvium.engineVersion,
    });
  `;
  const ids = [1, 2, 3, 4, 5, 6];
  // The main thread uses its own VM while the workers run.
  const mainVm = Microvium.restore(bytes, { 1: (x) => -x });
  const running = ids.map((id) => runWorker(code, { bytes, id }));
  let mainTotal = 0;
  for (let k = 0; k < 2000; k++) mainTotal += mainVm.exports[1]();
  const results = await Promise.all(running);
  for (const [i, r] of results.entries()) {
    assert.equal(r.code, 0);
    assert.deepEqual(r.messages, [{
      id: ids[i], total: 5 * (2000 * 2001) / 2, a: ids[i], list: [1, 2, 3],
      host: 10 * ids[i] + 1, ev: '8.0.0',
    }]);
  }
  assert.equal(mainTotal, (2000 * 2001) / 2);
  assert.equal(mainVm.exports[3](4), -3);
});

test('async imports work inside a worker', async () => {
  const bytes = compile(`
    const later = vmImport(1);
    vmExport(1, async (x) => { const v = await later(x); return v * 10; });
  `);
  const r = await runWorker(`
    const vm = Microvium.restore(workerData.bytes, { 1: async (x) => { await new Promise((r) => setTimeout(r, 2)); return x + 1; } });
    vm.exports[1](4).then((v) => parentPort.postMessage(v));
  `, { bytes });
  assert.equal(r.code, 0);
  assert.deepEqual(r.messages, [50]);
});

test('a worker exiting with live VMs is fine, and frees them', async () => {
  const bytes = compile(SRC);
  const code = `
    const vms = [];
    for (let i = 0; i < workerData.n; i++) {
      const vm = Microvium.restore(workerData.bytes, { 1: (x) => x });
      vm.exports[2]().list[0];
      vm.exports[1]();
      vms.push(vm);
    }
    globalThis.keep = vms;
    parentPort.postMessage(vms.length);
  `;
  for (let i = 0; i < 3; i++) {
    const r = await runWorker(code, { bytes, n: 2000 });
    assert.equal(r.code, 0);
    assert.deepEqual(r.messages, [2000]);
  }
  gc();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 12; i++) {
    const r = await runWorker(code, { bytes, n: 2000 });
    assert.equal(r.code, 0);
  }
  gc();
  const grown = (process.memoryUsage().rss - before) / 1048576;
  // 24,000 VMs with calls and proxies: leaked, they would take well over 100 MB.
  assert.ok(grown < 40, `RSS grew ${grown.toFixed(1)} MB over 12 workers of 2000 live VMs`);
});

test('a worker terminated while it holds live VMs (and a pending async call) is fine', async () => {
  const bytes = compile(`
    const pend = vmImport(1);
    vmExport(1, async () => { await pend(); return 1; });
    vmExport(2, () => 2);
  `);
  const w = new Worker(`
    const Microvium = require(${JSON.stringify(root)});
    const { parentPort, workerData } = require('node:worker_threads');
    const vm = Microvium.restore(workerData.bytes, { 1: async () => new Promise(() => {}) });
    vm.exports[1]();
    globalThis.keep = [vm];
    for (let i = 0; i < 100; i++) globalThis.keep.push(Microvium.restore(workerData.bytes, { 1: async () => 1 }));
    parentPort.postMessage(vm.exports[2]());
    setInterval(() => {}, 1000);
  `, { eval: true, workerData: { bytes } });
  const first = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  assert.equal(first, 2);
  await w.terminate();
});

test('a VM function or proxy posted to another thread fails with a clear error', () => {
  const vm = Microvium.restore(compile(SRC), { 1: (x) => x });
  const f = vm.exports[1];
  const o = vm.exports[2]();
  const { port1, port2 } = new MessageChannel();
  try {
    for (const value of [f, o, o.list, { nested: o }]) {
      assert.throws(() => port1.postMessage(value),
        (e) => e.name === 'DataCloneError' && /could not be cloned/.test(e.message));
    }
    assert.throws(() => new Worker('0', { eval: true, workerData: f }), (e) => e.name === 'DataCloneError');
    assert.throws(() => new Worker('0', { eval: true, workerData: o }), (e) => e.name === 'DataCloneError');
  } finally {
    port1.close();
    port2.close();
  }
  // Nothing happened to the VM.
  assert.equal(f(), 1);
  assert.equal(o.a, 1);
});

test('a VM posted to another thread fails with a clear error (it cannot be posted)', { todo: 'Node 20 cannot mark an object uncloneable: a posted VM arrives as an empty object with no VM methods' }, () => {
  const vm = Microvium.restore(compile(SRC), { 1: (x) => x });
  const { port1, port2 } = new MessageChannel();
  try {
    assert.throws(() => port1.postMessage(vm), (e) => e instanceof Error,
      'posting a VM succeeded (it arrives as an empty object)');
  } finally {
    port1.close();
    port2.close();
  }
});

test('terminating a worker whose guest is in an endless loop does not hang the process', () => {
  // The guest loops without a gas limit; worker.terminate() (and
  // process.exit) must still be able to end the worker and the process.
  const r = runIsolated(`
    const { Worker } = require('node:worker_threads');
    const bytes = compile(${JSON.stringify(SRC)});
    const w = new Worker(\`
      const Microvium = require(${JSON.stringify(root)});
      const { parentPort, workerData } = require('node:worker_threads');
      const vm = Microvium.restore(workerData.bytes, { 1: (x) => x });
      parentPort.postMessage('looping');
      vm.exports[4]();
    \`, { eval: true, workerData: { bytes } });
    w.once('message', async () => {
      await new Promise((r) => setTimeout(r, 50));
      const t = setTimeout(() => { console.log('terminate did not finish'); process.exit(3); }, 5000);
      await w.terminate();
      clearTimeout(t);
      console.log('terminated');
    });
  `, { timeout: 10000 });
  assert.equal(r.signal, null, `the process hung (killed by ${r.signal}); stdout: ${r.stdout}`);
  assert.equal(r.stdout.trim(), 'terminated', r.stderr);
  assert.equal(r.status, 0, r.stderr);
});

test('two copies of the package load and run in one process (each with its own VMs)', () => {
  // Two versions of a dependency often end up side by side in one app. The
  // addon's thread-locals come out of a small per-process reserve; the
  // second copy must still fit (and each copy keeps its own VMs apart).
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const root = path.join(__dirname, '..');
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'microvium-copy-'));
  try {
    for (const f of ['index.js', 'binding.js', 'package.json', ...fs.readdirSync(root).filter((n) => n.endsWith('.node'))]) {
      fs.copyFileSync(path.join(root, f), path.join(copy, f));
    }
    fs.cpSync(path.join(root, 'lib'), path.join(copy, 'lib'), { recursive: true });
    const r = runIsolated(`
      const other = require(${JSON.stringify(copy)});
      assert.notEqual(other, Microvium);
      const src = compile('let n = 0; vmExport(1, (k) => { n = n + k; return n; });');
      const a = Microvium.restore(src, {});
      const b = other.restore(src, {});
      assert.equal(a.exports[1](2), 2);
      assert.equal(b.exports[1](5), 5);
      assert.equal(a.exports[1](2), 4);
      assert.throws(() => other.restore(new Uint8Array(3), {}), /Microvium/);
      console.log('both ran');
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /both ran/);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});
