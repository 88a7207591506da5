'use strict';
// Membrane workloads of this addon (issue 3), run by run.js after the main
// table, or alone: `node --expose-gc benches/membrane.js [--json FILE]`.
//
//   propread  one property read through a held object proxy, read again
//             (the read cache answers: nothing ran in the VM since)
//   propfresh one read right after a call into the VM (the cache cannot
//             answer): a call and a read, less the call alone
//   objin     a plain 3-property object passed into the guest (deep copy)
//   churn     5,000 live proxies taken, then released in random order
//             (cost per proxy: creation, and release through the host GC)
//
// The C++ host of the `microvium` package runs objin too (its proxies read
// nothing and it never releases handles, so propread and churn are ours only).

const fs = require('node:fs');
const path = require('node:path');
const { Microvium: Compiler, addDefaultGlobals } = require('microvium/dist/lib');
const Microvium = require('..');

const SOURCE = `
const held = { x: 1, y: 2, z: 3 };
vmExport(1, () => held);
vmExport(2, (o) => o.a);
vmExport(3, (i) => ({ i: i }));
vmExport(4, (i) => i);
`;

function compile(src) {
  const c = Compiler.create();
  addDefaultGlobals(c);
  c.evaluateModule({ sourceText: src });
  return c.createSnapshot();
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => process.hrtime.bigint();

function timePerOp(rounds, n, fn) {
  const samples = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = now();
    fn(n);
    samples.push(Number(now() - t0) / n);
  }
  return median(samples);
}

async function churn(vm, rounds) {
  const make = vm.exports[3];
  const create = [];
  const release = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = now();
    const live = [];
    for (let i = 0; i < 5000; i++) live.push(make(i));
    const t1 = now();
    // Release in random order (Fisher-Yates order of dropping references),
    // then let the host collector and the finalizers run. The release figure
    // includes that full collection of the whole process.
    for (let i = live.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [live[i], live[j]] = [live[j], live[i]];
    }
    while (live.length) live.pop();
    global.gc();
    await new Promise(setImmediate);
    create.push(Number(t1 - t0) / 5000);
    release.push(Number(now() - t1) / 5000);
  }
  const liveAfter = Microvium.__internals.liveHandles(vm);
  return { create: median(create), release: median(release), liveHandlesAfter: liveAfter };
}

async function main() {
  if (typeof global.gc !== 'function') {
    const { execFileSync } = require('node:child_process');
    process.stdout.write(execFileSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)]));
    return;
  }
  const jsonAt = process.argv.indexOf('--json');
  const snapshot = compile(SOURCE);
  const vm = Microvium.restore(snapshot.data, {});
  const held = vm.exports[1]();
  const takeObj = vm.exports[2];
  const arg = { a: 1, b: 'two', c: true };

  const results = {
    propread: { addon: timePerOp(7, 200000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += held.x; return s; }) },
    propfresh: { addon: null },
    objin: { addon: timePerOp(7, 50000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += takeObj(arg); return s; }) },
    churn: { addon: null },
  };
  const ident = vm.exports[4];
  const callAndRead = timePerOp(7, 200000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += ident(i & 1023) + held.x; return s; });
  const callOnly = timePerOp(7, 200000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += ident(i & 1023); return s; });
  results.propfresh.addon = Math.max(0, callAndRead - callOnly);
  const c = await churn(vm, 7);
  results.churn.addon = c;

  try {
    const cppVm = Compiler.restore(snapshot, {});
    const cppTake = cppVm.resolveExport(2);
    // A fresh C++ VM per batch: its handles are never released (see README).
    results.objin.cpp = timePerOp(5, 200, (n) => { for (let i = 0; i < n; i++) cppTake(arg); });
  } catch (e) {
    results.objin.cpp = null;
    results.objin.cppError = e.message;
  }

  const fmt = (ns) => (ns == null ? 'n/a' : ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
  const lines = [
    'membrane workloads (addon; C++ host where it can run them)',
    `  propread  one read through a held proxy        addon ${fmt(results.propread.addon)} (read again: the read cache)`,
    `  propfresh one read after a call into the VM    addon ${fmt(results.propfresh.addon)} (the cache cannot answer)`,
    `  objin     3-property object passed in (copy)  addon ${fmt(results.objin.addon)}   cpp ${fmt(results.objin.cpp)}`,
    `  churn     5,000 live proxies, random release   addon ${fmt(c.create)} to take, ${fmt(c.release)} to release (incl. a full GC) per proxy; live handles after: ${c.liveHandlesAfter}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (jsonAt > 0) fs.writeFileSync(path.resolve(process.argv[jsonAt + 1]), JSON.stringify(results, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`membrane bench: ${e.message}\n`);
  process.exit(1);
});
