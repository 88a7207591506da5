'use strict';
// One benchmark process: runs every workload on one JavaScript engine and
// prints one JSON object on stdout. benches/run.js spawns it, one process per
// engine per round; the C floor (benches/floor/floor.c) plays the same role.
//
//   node --expose-gc benches/worker.js <engine> run <main.mvm> <restore.mvm> [--budget-ms N] [--min-batches N] [--only a,b]
//   node --expose-gc benches/worker.js <engine> memory <restore.mvm> <count>
//
// engine: addon (this package), cpp (the `microvium` package's C++ host),
// node (plain Node.js running the guest source).
//
// run mode prints JSON lines: {"start": name} before each workload,
// {"workload": name, "ns": median ns per operation, ...} after it, then
// {"done": true}. memory mode prints one JSON object.

const fs = require('fs');
const path = require('path');
const { MAIN_SOURCE, RESTORE_SOURCE, nodeModuleFactory } = require('./guest');

const IDENTITY = (x) => x;

// ---- Engines -------------------------------------------------------------
//
// Each engine offers:
//   restore(bytes, imports)   a new VM (opaque), for the restore and memory workloads
//   open()                    the main program with import 1 = identity, as
//                             { fn: [, f1..f8], held } with exports resolved once
//   freshPerBatch             whether each batch of the boundary workloads needs
//                             a freshly restored VM (see cpp)
//   maxBatch                  caps on operations per batch, by workload
//   unsupported               workload -> reason it cannot run on this engine

function addonEngine(mainBytes) {
  // run.js passes --addon PATH through the environment
  const Microvium = require(process.env.MICROVIUM_BENCH_ADDON || path.join(__dirname, '..', 'index.js'));
  const restore = Microvium.restore || (Microvium.default && Microvium.default.restore);
  if (typeof restore !== 'function') throw new Error('../index.js has no restore()');
  return {
    restore: (bytes, imports) => restore(bytes, imports),
    open() {
      const vm = restore(mainBytes, { 1: IDENTITY });
      const fn = [];
      for (let id = 1; id <= 8; id++) fn[id] = vm.exports[id];
      return { vm, fn };
    },
    freshPerBatch: false,
    maxBatch: {},
    unsupported: {},
  };
}

// The `microvium` package's own native host (C++, node-addon-api). Every value
// it hands to JavaScript keeps a handle in the VM's handle list that is never
// released, so each call costs more than the one before (about +0.1 µs per
// earlier call, and the guest heap eventually fills). To measure it at all,
// each batch of the boundary workloads runs on a freshly restored VM and is
// capped at 1,000 operations (40 for 1 kB strings, which fill its heap
// sooner): its figures are the mean of the first operations of a VM, which
// flatters it.
function cppEngine(mainBytes) {
  const mv = require('microvium/dist/lib');
  const restore = (bytes, imports) => mv.Microvium.restore({ data: Buffer.from(bytes) }, imports);
  return {
    restore,
    open() {
      const vm = restore(mainBytes, { 1: IDENTITY });
      const fn = [];
      for (let id = 1; id <= 8; id++) fn[id] = vm.resolveExport(id);
      return { vm, fn };
    },
    freshPerBatch: true,
    // str1k: every 1 kB string stays rooted, so about 60 fill the 64 kB heap
    maxBatch: { restore: 1000, call: 1000, crossing: 1000, str10: 1000, str1k: 40 },
    unsupported: {
      proxy3: 'its object proxies read no properties (every get returns undefined)',
      objret: 'its object proxies read no properties (every get returns undefined)',
    },
  };
}

// Plain Node.js running the same guest source. "Restoring" is instantiating
// the module (its body is compiled once, as a snapshot is compiled once).
function nodeEngine() {
  const instantiateMain = nodeModuleFactory(MAIN_SOURCE);
  const instantiateRestore = nodeModuleFactory(RESTORE_SOURCE);
  return {
    restore: (_bytes, imports) => instantiateRestore(imports),
    open() {
      const exports = instantiateMain({ 1: IDENTITY });
      const fn = [];
      for (let id = 1; id <= 8; id++) fn[id] = exports[id];
      return { vm: exports, fn };
    },
    freshPerBatch: false,
    maxBatch: {},
    unsupported: {},
  };
}

const ENGINES = { addon: addonEngine, cpp: cppEngine, node: nodeEngine };

// ---- Workloads -------------------------------------------------------------
//
// Each runs n operations and returns { ns, check }: the nanoseconds of the
// timed part and a per-operation check value that does not depend on n, the
// same on every engine (run.js compares them). Keep in step with floor.c.

const now = () => process.hrtime.bigint();
const elapsed = (t0) => Number(process.hrtime.bigint() - t0);

const STR10 = 'abcdefghij';
const STR1K = Array.from({ length: 1024 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');

const WORKLOADS = {
  restore(S, n, ctx) {
    const vms = new Array(n);
    const imports = { 1: IDENTITY };
    const t0 = now();
    for (let i = 0; i < n; i++) vms[i] = ctx.engine.restore(ctx.restoreBytes, imports);
    const ns = elapsed(t0);
    if (typeof vms[n - 1] !== 'object') throw new Error('restore returned ' + typeof vms[n - 1]);
    disposeAll(vms);
    return { ns, check: 1 };
  },
  call(S, n) {
    const add = S.fn[1];
    let sum = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) sum += add(i & 1023, 1) - (i & 1023);
    return { ns: elapsed(t0), check: sum / n };
  },
  crossing(S, n) {
    const thousands = Math.ceil(n / 1000);
    const t0 = now();
    const last = S.fn[2](thousands);
    const ns = elapsed(t0);
    return { ns: ns * n / (thousands * 1000), check: last };
  },
  objects(S, n) {
    let ns = 0, check = 0;
    for (let i = 0; i < n; i++) {
      const t0 = now();
      check += S.fn[4](100);
      ns += elapsed(t0);
    }
    return { ns, check: check / n };
  },
  closures(S, n) {
    let ns = 0, check = 0;
    for (let i = 0; i < n; i++) {
      const t0 = now();
      check += S.fn[5](1000, 100);
      ns += elapsed(t0);
    }
    return { ns, check: check / n };
  },
  str10: (S, n) => stringRoundTrips(S, n, STR10),
  str1k: (S, n) => stringRoundTrips(S, n, STR1K),
  proxy3(S, n) {
    const o = S.held;
    let sum = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) sum += o.x + o.y + o.z;
    return { ns: elapsed(t0), check: sum / n };
  },
  objret(S, n) {
    const f = S.fn[8];
    let sum = 0;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const o = f();
      sum += o.a + o.b.length + (o.c ? 1 : 0);
    }
    return { ns: elapsed(t0), check: sum / n };
  },
};

function stringRoundTrips(S, n, s) {
  const f = S.fn[6];
  let total = 0;
  const t0 = now();
  for (let i = 0; i < n; i++) total += f(s).length;
  return { ns: elapsed(t0), check: total / n };
}

// Batches that restore many VMs free them again (outside the timed part)
// where the engine can, so later batches do not run in a bigger process.
function disposeAll(vms) {
  for (const vm of vms) {
    if (vm && typeof vm.dispose === 'function') {
      try { vm.dispose(); } catch { /* not ours to judge here */ }
    }
  }
}

// The boundary workloads (whose cost depends on values handed across).
const BOUNDARY = new Set(['call', 'crossing', 'str10', 'str1k', 'proxy3', 'objret']);
const LONG = new Set(['objects', 'closures']);

function openSession(engine) {
  const S = engine.open();
  if (S.fn[3](1000) !== 1000) throw new Error('objects setup failed');
  S.held = S.fn[7]();
  return S;
}

// objret: a host value for a guest object keeps that object alive in the
// guest until the host value is collected and finalized, and finalizers only
// run after a JS collection, on a later turn of the event loop. The guest
// heap is 64 kB: without a collection between them, a few thousand returned
// objects fill it. So objret batches are capped at 500 operations for every
// engine (the floor too), and before each batch a full collection runs and
// the event loop turns (outside the timed part). `sustain` below checks
// separately what happens without that help.
const DEFAULT_CAP = { objret: 500, restore: 20000 };
const COLLECT_BETWEEN = new Set(['objret']);
const SUSTAIN_CALLS = 10000;

const turn = () => new Promise((resolve) => setImmediate(resolve));

async function measure(name, engine, ctx, budgetNs, minBatches) {
  const fn = WORKLOADS[name];
  const cap = engine.maxBatch[name] || DEFAULT_CAP[name] || (LONG.has(name) ? 1 : 1 << 24);
  const fresh = engine.freshPerBatch && BOUNDARY.has(name);
  let S = ctx.session;
  // every batch starts on a fresh turn of the event loop, so that pending
  // finalizers have run (as they would between events in an application)
  const collect = COLLECT_BETWEEN.has(name) && typeof global.gc === 'function';
  const batch = async (n) => {
    if (collect) global.gc();
    await turn();
    if (fresh) S = openSession(engine);
    return fn(S, n, ctx);
  };
  // warm-up, then grow the batch to about a tenth of the budget
  await batch(1);
  let n = 1;
  const target = budgetNs / 10;
  while (n < cap) {
    const { ns } = await batch(n);
    if (ns >= target) break;
    let next = ns > 0 ? Math.floor(n * (target / ns) * 1.2) : n * 10;
    if (next <= n) next = n * 2;
    if (next > n * 10) next = n * 10;
    n = Math.min(next, cap);
  }
  const samples = [];
  let check = 0;
  const start = now();
  while (samples.length < 1000 && (samples.length < minBatches || elapsed(start) < budgetNs)) {
    const r = await batch(n);
    samples.push(r.ns / n);
    check += r.check;
  }
  samples.sort((a, b) => a - b);
  const m = samples.length;
  const median = m % 2 ? samples[(m - 1) / 2] : (samples[m / 2 - 1] + samples[m / 2]) / 2;
  const out = { ns: median, batches: m, batch: n, check: check / m };
  if (COLLECT_BETWEEN.has(name)) out.sustain = sustain(S);
  return out;
}

// SUSTAIN_CALLS objects returned and read in one synchronous loop, with no
// chance for the host to collect in between (what a plain loop over
// messages does). Runs last on the session: it may leave the VM unusable.
function sustain(S) {
  const f = S.fn[8];
  let i = 0;
  try {
    for (; i < SUSTAIN_CALLS; i++) {
      const o = f();
      if (o.a !== 1) throw new Error('wrong result');
    }
    return { ok: true, calls: i, target: SUSTAIN_CALLS };
  } catch (e) {
    return { ok: false, calls: i, target: SUSTAIN_CALLS, error: String((e && e.message) || e).slice(0, 160) };
  }
}

function parseOptions(argv) {
  const opts = { budgetMs: 300, minBatches: 3, only: null };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--budget-ms') opts.budgetMs = Number(argv[i + 1]);
    else if (argv[i] === '--min-batches') opts.minBatches = Number(argv[i + 1]);
    else if (argv[i] === '--only') opts.only = argv[i + 1].split(',');
  }
  return opts;
}

async function runMode(engineName, mainPath, restorePath, rest) {
  const opts = parseOptions(rest);
  const mainBytes = new Uint8Array(fs.readFileSync(mainPath));
  const restoreBytes = new Uint8Array(fs.readFileSync(restorePath));
  const engine = ENGINES[engineName](mainBytes);
  const ctx = { engine, restoreBytes, session: openSession(engine) };
  // One JSON line per workload, announced before it starts, so that if the
  // engine takes the process down the parent knows which workload did it and
  // keeps the results already printed.
  const emit = (o) => fs.writeSync(1, JSON.stringify(o) + '\n');
  for (const name of Object.keys(WORKLOADS)) {
    if (opts.only && !opts.only.includes(name)) continue;
    emit({ start: name });
    let result;
    if (engine.unsupported[name]) {
      result = { unsupported: engine.unsupported[name] };
    } else {
      try {
        result = await measure(name, engine, ctx, opts.budgetMs * 1e6, opts.minBatches);
      } catch (e) {
        result = { error: String((e && e.stack) || e).split('\n').slice(0, 3).join(' | ') };
      }
    }
    emit({ workload: name, ...result });
  }
  emit({ done: true });
}

// Memory per VM: `count` idle VMs restored from one snapshot, in a fresh
// process, measured after full collections against a baseline taken after
// one warm-up VM (so code pages and the module itself are not counted).
function memoryMode(engineName, restorePath, count) {
  if (typeof global.gc !== 'function') throw new Error('run with --expose-gc');
  const bytes = new Uint8Array(fs.readFileSync(restorePath));
  const engine = ENGINES[engineName](bytes);
  const imports = { 1: IDENTITY };
  const warm = engine.restore(bytes, imports);
  const settle = () => { for (let i = 0; i < 4; i++) global.gc(); };
  settle();
  const m0 = process.memoryUsage();
  const vms = new Array(count);
  for (let i = 0; i < count; i++) vms[i] = engine.restore(bytes, imports);
  settle();
  const m1 = process.memoryUsage();
  const per = (k) => (m1[k] - m0[k]) / count;
  const out = {
    engine: engineName,
    count,
    rssPerVm: per('rss'),
    externalPerVm: per('external'),
    heapPerVm: per('heapUsed'),
    arrayBuffersPerVm: per('arrayBuffers'),
    snapshotBytes: bytes.length,
  };
  if (vms.length !== count || !warm) throw new Error('unreachable');
  process.stdout.write(JSON.stringify(out) + '\n');
}

function main() {
  const [engineName, mode, ...rest] = process.argv.slice(2);
  if (!ENGINES[engineName]) throw new Error('unknown engine ' + engineName);
  if (mode === 'run') return runMode(engineName, rest[0], rest[1], rest.slice(2));
  if (mode === 'memory') return memoryMode(engineName, rest[0], Number(rest[1]));
  throw new Error('unknown mode ' + mode);
}

if (require.main === module) {
  Promise.resolve().then(main).catch((e) => {
    process.stderr.write(String((e && e.stack) || e) + '\n');
    process.exit(1);
  });
}
module.exports = { WORKLOADS: Object.keys(WORKLOADS), worker: path.resolve(__filename) };
