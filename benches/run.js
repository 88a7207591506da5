#!/usr/bin/env node
'use strict';
// `npm run bench`: the same compiled snapshots and workloads on
//   unchecked  the floor with the safety checks compiled out (GLUE_UNCHECKED)
//   floor  the engine with this project's port, called straight from C
//   addon  this package
//   limited  this package with a time limit set on every VM (benches/limited.js)
//   baseline another build of this package (--baseline PATH), e.g. before a change
//   cpp    the `microvium` package's own native (C++) host
//   node   plain Node.js running the same guest source
// each engine in its own process per round, rounds interleaving the engines,
// then per-workload medians and the ratios measured in this same run.
// See benches/README.md.

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');
const { MAIN_SOURCE, RESTORE_SOURCE, compileSnapshot } = require('./guest');
const { WORKLOADS } = require('./worker');

const ROOT = path.resolve(__dirname, '..');
const WORKER = path.join(__dirname, 'worker.js');
const ALL_ENGINES = ['unchecked', 'floor', 'addon', 'limited', 'baseline', 'cpp', 'node'];
// Run unless --engines says otherwise (baseline needs --baseline PATH).
const DEFAULT_ENGINES = ['unchecked', 'floor', 'addon', 'limited', 'cpp', 'node'];
// Engines that are the addon loaded another way (benches/worker.js 'addon').
const ADDON_VARIANTS = ['addon', 'limited', 'baseline'];
const FLOORS = ['unchecked', 'floor'];

const DESCRIPTIONS = {
  restore: 'restore a ~1 kB snapshot',
  call: 'host→guest call (a, b) => a + b',
  crossing: 'guest→host crossing (import x => x)',
  objects: '1,000 objects × 100 passes',
  closures: '1,000 closures × 100 (GC heavy)',
  str10: '10-char string round trip',
  str1k: '1 kB string round trip',
  proxy3: '3 reads through a held proxy',
  objret: 'object returned, 3 props read',
};

// The issue's targets, for the addon, from the medians of this run.
const TARGETS = [
  { workload: 'call', text: '≤ 2.5× floor call', limit: 2.5, base: 'call' },
  { workload: 'crossing', text: '≤ 2× floor crossing', limit: 2, base: 'crossing' },
  { workload: 'objects', text: '≤ 1.1× floor', limit: 1.1, base: 'objects' },
  { workload: 'closures', text: '≤ 1.1× floor', limit: 1.1, base: 'closures' },
  { workload: 'restore', text: '≤ 3× floor restore', limit: 3, base: 'restore' },
  { workload: 'str10', text: '≤ 5× floor call', limit: 5, base: 'call' },
  { workload: 'proxy3', text: '≤ 6× floor call', limit: 6, base: 'call' },
];
// The cost of safety (the speed issue): guest compute on the addon, checks
// on, against the same engine with the checks compiled out.
const SAFETY_TARGETS = [
  { workload: 'objects', limit: 1.2 },
  { workload: 'closures', limit: 1.2 },
];
// The sandbox limits (issue 15): guest compute with a time limit armed costs
// at most 5% more than with none.
const LIMITED_TARGETS = [
  { workload: 'objects', limit: 1.05 },
  { workload: 'closures', limit: 1.05 },
];
const FLOOR_VS_CPP_OBJECTS = 20;   // the floor's objects workload ≥ 20× faster than cpp
const MEMORY_TARGET_BYTES = 4 * 1024;

function usage() {
  return `usage: node benches/run.js [options]
  --quick               short run (2 rounds, small budgets): a smoke test, not a measurement
  --json FILE           also write every sample and the summary to FILE
  --rounds N            timing rounds (default 9; quick 2)
  --budget-ms N         time per workload per engine per round (default 200; quick 50)
  --engines a,b         subset of ${ALL_ENGINES.join(',')}
  --only w1,w2          subset of ${WORKLOADS.join(',')} (memory: add or drop "memory")
  --memory-count N      VMs per memory measurement (default 1000)
  --memory-rounds N     memory measurements per engine (default 3; quick 1)
  --floor-cflags "..."  extra gcc flags for both floors (e.g. -O3, -flto)
  --addon PATH          module to load as the addon (default: the package's index.js)
  --baseline PATH       also run this build of the addon (its index.js) as engine "baseline",
                        e.g. a checkout from before a change, to compare in the same run
  --floor-bin PATH      use this (checked) floor binary instead of building one; the
                        unchecked floor is still built from c/
`;
}

function parseArgs(argv) {
  const o = {
    quick: false, json: null, rounds: null, budgetMs: null, engines: null, baseline: null,
    only: null, memoryCount: 1000, memoryRounds: null, floorCflags: '', addon: path.join(ROOT, 'index.js'),
    floorBin: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = path.resolve(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--budget-ms') o.budgetMs = Number(next());
    else if (a === '--engines') o.engines = next().split(',');
    else if (a === '--only') o.only = next().split(',');
    else if (a === '--memory-count') o.memoryCount = Number(next());
    else if (a === '--memory-rounds') o.memoryRounds = Number(next());
    else if (a === '--floor-cflags') o.floorCflags = next();
    else if (a === '--addon') o.addon = path.resolve(next());
    else if (a === '--baseline') o.baseline = path.resolve(next());
    else if (a === '--floor-bin') o.floorBin = path.resolve(next());
    else if (a === '--help' || a === '-h') { process.stdout.write(usage()); process.exit(0); }
    else throw new Error(`unknown option ${a}\n${usage()}`);
  }
  if (!o.engines) o.engines = DEFAULT_ENGINES.slice().concat(o.baseline ? ['baseline'] : []);
  for (const e of o.engines) if (!ALL_ENGINES.includes(e)) throw new Error(`unknown engine ${e}`);
  if (o.engines.includes('baseline') && !o.baseline) throw new Error('engine baseline needs --baseline PATH');
  if (o.only) {
    for (const w of o.only) {
      if (w !== 'memory' && !WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}`);
    }
  }
  o.rounds = o.rounds || (o.quick ? 2 : 9);
  o.budgetMs = o.budgetMs || (o.quick ? 50 : 200);
  o.minBatches = o.quick ? 2 : 3;
  o.memoryRounds = o.memoryRounds != null ? o.memoryRounds : (o.quick ? 1 : 3);
  o.workloads = o.only ? WORKLOADS.filter((w) => o.only.includes(w)) : WORKLOADS.slice();
  o.memory = !o.only || o.only.includes('memory');
  return o;
}

const log = (...a) => process.stderr.write(a.join(' ') + '\n');

// ---- The floor: build (cached by the hash of its inputs) -----------------

// `variant` 'unchecked' is the same build with -DGLUE_UNCHECKED: every check
// of c/bytecode_checks.h and the restore-time verifier compiled out.
function buildFloor(extraFlags, variant = 'floor') {
  // The engine as the addon compiles it: the pinned source with the patches
  // of c/patches/ applied, which `npm run build` (build.rs) writes here.
  const engineDir = path.join(ROOT, 'target/engine');
  if (!fs.existsSync(path.join(engineDir, 'microvium.c'))) {
    throw new Error(`${engineDir}/microvium.c not found: run \`npm run build\` first (it writes the patched engine there)`);
  }
  // Compiled: c/engine.c (which #includes the engine and the other parts of
  // the glue), the C-only host hooks and the floor's driver.
  const sources = [
    path.join(ROOT, 'c/engine.c'), path.join(ROOT, 'c/standalone_host.c'), path.join(__dirname, 'floor/floor.c'),
  ];
  // Hashed: those and everything they include, so every file of c/.
  const glue = fs.readdirSync(path.join(ROOT, 'c')).filter((f) => /\.[ch]$/.test(f)).sort()
    .map((f) => path.join(ROOT, 'c', f));
  const inputs = [...glue, path.join(engineDir, 'microvium.c'), path.join(engineDir, 'microvium.h'),
    path.join(__dirname, 'floor/floor.c')];
  const cc = process.env.CC || 'gcc';
  const flags = ['-O2', '-std=gnu11', `-I${path.join(ROOT, 'c')}`, `-I${engineDir}`,
    '-Wno-unused-parameter', '-Wno-sign-compare', '-Wno-unused-function',
    ...(variant === 'unchecked' ? ['-DGLUE_UNCHECKED'] : []),
    ...extraFlags.split(/\s+/).filter(Boolean)];
  const hash = crypto.createHash('sha256');
  hash.update(cc + '\0' + flags.join('\0'));
  for (const f of inputs) hash.update(path.basename(f) + '\0').update(fs.readFileSync(f));
  const out = path.join(__dirname, 'floor/build', `${variant}-` + hash.digest('hex').slice(0, 16));
  if (fs.existsSync(out)) return { path: out, flags, cc };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = out + '.tmp' + process.pid;
  const r = spawnSync(cc, [...flags, ...sources, '-o', tmp, '-lm'], { encoding: 'utf8' });
  if (r.status !== 0) {
    const msg = (r.stderr || String(r.error)).split('\n').filter((l) => /error|undefined reference/.test(l));
    throw new Error('building the floor failed: ' + msg.slice(0, 4).join(' | '));
  }
  fs.renameSync(tmp, out);
  // drop floors built from older inputs
  for (const f of fs.readdirSync(path.dirname(out))) {
    if (f.startsWith(`${variant}-`) && f !== path.basename(out)) fs.rmSync(path.join(path.dirname(out), f), { force: true });
  }
  return { path: out, flags, cc };
}

// ---- Child processes --------------------------------------------------------

// [command, argv, the addon module the worker loads (addon variants)]
function engineCommand(engine, ctx, mode, args) {
  if (engine === 'floor') return [ctx.floor.path, [mode, ...args]];
  if (engine === 'unchecked') return [ctx.unchecked.path, [mode, ...args]];
  const addon = { addon: ctx.opts.addon, limited: LIMITED_SHIM, baseline: ctx.opts.baseline }[engine];
  const as = addon ? 'addon' : engine;
  return [process.execPath, ['--expose-gc', WORKER, as, mode, ...args], addon];
}

const LIMITED_SHIM = path.join(__dirname, 'limited.js');

const CHILD_TIMEOUT_MS = 240000;

let addonPath = path.join(ROOT, 'index.js');

function spawnChild(cmd, args, addon = addonPath) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: CHILD_TIMEOUT_MS,
    // the limited engine's shim loads the addon under test
    env: { ...process.env, MICROVIUM_BENCH_ADDON: addon, MICROVIUM_BENCH_LIMITED_ADDON: addonPath },
  });
  return { ...r, ms: Date.now() - t0 };
}

function describeExit(r) {
  if (r.error && r.error.code === 'ETIMEDOUT') return `timed out after ${CHILD_TIMEOUT_MS / 1000} s`;
  if (r.error) return String(r.error.message);
  const tail = (r.stderr || '').trim().split('\n').filter(Boolean).slice(-2).join(' | ');
  return (r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`) + (tail ? `: ${tail}` : '');
}

// Runs the workloads of one engine for one round. A process that dies loses
// only the workload it was running: the rest run again in a new process.
function runRound(engine, ctx) {
  const results = {};
  let remaining = ctx.opts.workloads.slice();
  let ms = 0;
  while (remaining.length) {
    const args = [ctx.mainPath, ctx.restorePath, '--budget-ms', String(ctx.opts.budgetMs),
      '--min-batches', String(ctx.opts.minBatches), '--only', remaining.join(',')];
    const [cmd, argv, addon] = engineCommand(engine, ctx, 'run', args);
    const r = spawnChild(cmd, argv, addon);
    ms += r.ms;
    let current = null;
    let done = false;
    for (const line of (r.stdout || '').split('\n')) {
      if (!line.trim()) continue;
      let o;
      try { o = JSON.parse(line); } catch { continue; }
      if (o.start) current = o.start;
      else if (o.workload) {
        const { workload, ...rest } = o;
        results[workload] = rest;
        remaining = remaining.filter((w) => w !== workload);
        current = null;
      } else if (o.done) done = true;
    }
    if (done && r.status === 0) break;
    const failed = current || remaining[0];
    if (!failed) break;
    results[failed] = { error: 'process died: ' + describeExit(r) };
    remaining = remaining.filter((w) => w !== failed);
    // Without a single finished workload the engine does not start at all.
    if (!current && Object.keys(results).length === 1) {
      for (const w of remaining) results[w] = { error: results[failed].error };
      break;
    }
  }
  return { results, ms };
}

function runMemory(engine, ctx) {
  const [cmd, argv, addon] = engineCommand(engine, ctx, 'memory', [ctx.restorePath, String(ctx.opts.memoryCount)]);
  const r = spawnChild(cmd, argv, addon);
  if (r.status !== 0) return { error: 'process died: ' + describeExit(r) };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { error: 'unreadable output: ' + r.stdout.slice(0, 200) };
  }
}

// Whether the addon loads at all (checked in a child, so this process never
// loads it), with a reason when it does not.
function probeAddon(file) {
  const code = `const M = require(${JSON.stringify(file)});
    const r = M.restore || (M.default && M.default.restore);
    if (typeof r !== 'function') throw new Error('no restore() export');`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
  if (r.status === 0) return null;
  const lines = (r.stderr || '').split('\n').filter((l) => /Error|Cannot/.test(l));
  return lines.slice(0, 2).join(' | ') || describeExit(r);
}

// ---- Statistics and formatting --------------------------------------------

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length;
  if (!m) return NaN;
  return m % 2 ? s[(m - 1) / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
}

function fmtTime(ns) {
  if (!Number.isFinite(ns)) return '—';
  if (ns < 1) return ns.toFixed(2) + ' ns';
  if (ns < 1e3) return ns.toPrecision(3) + ' ns';
  if (ns < 1e6) return (ns / 1e3).toPrecision(3) + ' µs';
  if (ns < 1e9) return (ns / 1e6).toPrecision(3) + ' ms';
  return (ns / 1e9).toPrecision(3) + ' s';
}

function fmtRatio(x) {
  if (!Number.isFinite(x)) return '—';
  if (x >= 100) return Math.round(x) + '×';
  if (x >= 10) return x.toFixed(1) + '×';
  return x.toFixed(2) + '×';
}

function fmtBytes(b) {
  if (!Number.isFinite(b)) return '—';
  if (Math.abs(b) < 1024) return Math.round(b) + ' B';
  return (b / 1024).toFixed(2) + ' kB';
}

function table(rows) {
  const widths = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] || 0, [...String(c)].length); });
  const pad = (c, i) => {
    const s = String(c);
    const fill = ' '.repeat(widths[i] - [...s].length);
    return i === 0 ? s + fill : fill + s;
  };
  const line = (r) => r.map(pad).join('  ');
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n');
}

function summarize(rounds, engines, workloads) {
  const summary = {};
  for (const w of workloads) {
    summary[w] = {};
    for (const e of engines) {
      const samples = [];
      const checks = new Set();
      let note = null;
      for (const round of rounds) {
        const r = round[e] && round[e].results[w];
        if (!r) continue;
        if (Number.isFinite(r.ns)) { samples.push(r.ns); checks.add(r.check); }
        else note = note || r.unsupported && ('unsupported: ' + r.unsupported) || r.error;
      }
      summary[w][e] = samples.length
        ? { median: median(samples), min: Math.min(...samples), max: Math.max(...samples),
          rounds: samples.length, checks: [...checks], note }
        : { median: NaN, note: note || 'not run' };
      // the worst sustain check over the rounds (objret)
      for (const round of rounds) {
        const r = round[e] && round[e].results[w];
        if (r && r.sustain) {
          const prev = summary[w][e].sustain;
          if (!prev || (prev.ok && !r.sustain.ok) || (!r.sustain.ok && r.sustain.calls < prev.calls)) {
            summary[w][e].sustain = r.sustain;
          }
        }
      }
    }
  }
  return summary;
}

function summarizeMemory(memRuns, engines) {
  const out = {};
  for (const e of engines) {
    const runs = memRuns.map((m) => m[e]).filter((m) => m && !m.error);
    const errors = memRuns.map((m) => m[e]).filter((m) => m && m.error);
    if (!runs.length) { out[e] = { error: errors.length ? errors[0].error : 'not run' }; continue; }
    const keys = ['rssPerVm', 'externalPerVm', 'heapPerVm', 'arrayBuffersPerVm', 'mallocPerVm'];
    out[e] = { runs: runs.length, count: runs[0].count };
    for (const k of keys) {
      const xs = runs.map((r) => r[k]).filter(Number.isFinite);
      if (xs.length) out[e][k] = median(xs);
    }
  }
  return out;
}

function checkTargets(summary, memory, engines) {
  const res = [];
  const get = (w, e) => summary[w] && summary[w][e] ? summary[w][e].median : NaN;
  if (engines.includes('addon') && engines.includes('floor')) {
    for (const t of TARGETS) {
      if (!summary[t.workload] || !summary[t.base]) continue;
      const ratio = get(t.workload, 'addon') / get(t.base, 'floor');
      res.push({ target: `${t.workload} ${t.text}`, value: fmtRatio(ratio), ratio,
        met: Number.isFinite(ratio) ? ratio <= t.limit : null });
    }
  }
  if (engines.includes('addon') && engines.includes('unchecked')) {
    for (const t of SAFETY_TARGETS) {
      if (!summary[t.workload]) continue;
      const ratio = get(t.workload, 'addon') / get(t.workload, 'unchecked');
      res.push({ target: `${t.workload} (addon, checked) ≤ ${t.limit}× unchecked floor`, value: fmtRatio(ratio), ratio,
        met: Number.isFinite(ratio) ? ratio <= t.limit : null });
    }
  }
  if (engines.includes('addon') && engines.includes('limited')) {
    for (const t of LIMITED_TARGETS) {
      if (!summary[t.workload]) continue;
      const ratio = get(t.workload, 'limited') / get(t.workload, 'addon');
      res.push({ target: `${t.workload} with a time limit set ≤ ${t.limit}× without`, value: fmtRatio(ratio), ratio,
        met: Number.isFinite(ratio) ? ratio <= t.limit : null });
    }
  }
  if (engines.includes('floor') && engines.includes('cpp') && summary.objects) {
    const x = get('objects', 'cpp') / get('objects', 'floor');
    res.push({ target: `floor objects ≥ ${FLOOR_VS_CPP_OBJECTS}× faster than cpp`, value: fmtRatio(x),
      ratio: x, met: Number.isFinite(x) ? x >= FLOOR_VS_CPP_OBJECTS : null });
  }
  if (memory && memory.addon && Number.isFinite(memory.addon.rssPerVm)) {
    const v = memory.addon.rssPerVm;
    res.push({ target: 'memory ≤ 4 kB RSS per idle VM', value: fmtBytes(v), bytes: v, met: v <= MEMORY_TARGET_BYTES });
  } else if (memory && memory.addon) {
    res.push({ target: 'memory ≤ 4 kB RSS per idle VM', value: '—', met: null });
  }
  return res;
}

function report(summary, memory, targets, engines, workloads) {
  const out = [];
  const has = (e) => engines.includes(e);
  const head = ['workload', ...engines];
  if (has('floor') && has('unchecked')) head.push('floor÷unchecked');
  if (has('addon') && has('unchecked')) head.push('addon÷unchecked');
  if (has('addon') && has('floor')) head.push('addon÷floor');
  if (has('addon') && has('limited')) head.push('limited÷addon');
  if (has('addon') && has('baseline')) head.push('addon÷baseline');
  if (has('addon') && has('cpp')) head.push('cpp÷addon');
  if (has('cpp') && has('floor')) head.push('cpp÷floor');
  if (has('node') && has('addon')) head.push('addon÷node');
  const rows = [head];
  const notes = [];
  for (const w of workloads) {
    const s = summary[w];
    const row = [`${w}: ${DESCRIPTIONS[w]}`];
    for (const e of engines) {
      const v = s[e];
      if (Number.isFinite(v.median)) row.push(fmtTime(v.median));
      else {
        row.push(v.note && v.note.startsWith('unsupported') ? 'n/a' : 'failed');
        notes.push(`${e} ${w}: ${v.note}`);
      }
    }
    const r = (a, b) => fmtRatio(s[a].median / s[b].median);
    if (has('floor') && has('unchecked')) row.push(r('floor', 'unchecked'));
    if (has('addon') && has('unchecked')) row.push(r('addon', 'unchecked'));
    if (has('addon') && has('floor')) row.push(r('addon', 'floor'));
    if (has('addon') && has('limited')) row.push(r('limited', 'addon'));
    if (has('addon') && has('baseline')) row.push(r('addon', 'baseline'));
    if (has('addon') && has('cpp')) row.push(r('cpp', 'addon'));
    if (has('cpp') && has('floor')) row.push(r('cpp', 'floor'));
    if (has('node') && has('addon')) row.push(r('addon', 'node'));
    rows.push(row);
    for (const e of engines) {
      const sus = s[e].sustain;
      if (sus && !sus.ok) {
        notes.push(`${e} ${w}: measured with a collection between batches of 500; ` +
          `without one, a synchronous loop failed after ${sus.calls} of ${sus.target} calls: ${sus.error}`);
      }
    }
    // every engine must compute the same thing
    const checks = new Set();
    for (const e of engines) for (const c of s[e].checks || []) checks.add(c);
    if (checks.size > 1) notes.push(`${w}: results differ between engines (check values ${[...checks].join(', ')})`);
  }
  // rounds that disagree by more than a quarter of the median: other load on
  // the machine, or an engine whose speed drifts
  const noisy = [];
  let measured = 0;
  for (const w of workloads) {
    for (const e of engines) {
      const v = summary[w][e];
      if (!(v.rounds > 1)) continue;
      measured++;
      const spread = (v.max - v.min) / v.median;
      if (spread > 0.25) noisy.push({ spread, text: `${e} ${w} ${fmtTime(v.min)}–${fmtTime(v.max)}` });
    }
  }
  if (noisy.length) {
    noisy.sort((a, b) => b.spread - a.spread);
    notes.push(`${noisy.length} of ${measured} figures vary by more than 25% across rounds ` +
      `(other load on the machine?); widest (min–max): ${noisy.slice(0, 4).map((n) => n.text).join(', ')}`);
  }
  if (workloads.length) {
    out.push('Medians per operation (objects and closures: per whole workload).');
    out.push(table(rows));
  }

  if (memory) {
    out.push('');
    out.push(`Memory per idle VM (${(Object.values(memory).find((m) => m.count) || {}).count || '?'} VMs restored from one ~1 kB snapshot, fresh process, medians):`);
    const mrows = [['engine', 'RSS', 'external', 'JS heap', 'C malloc']];
    for (const e of engines) {
      const m = memory[e];
      if (!m || (e === 'limited' && m.error === 'not run')) continue;
      if (m.error) { mrows.push([e, 'failed', '', '', '']); notes.push(`${e} memory: ${m.error}`); continue; }
      const isFloor = FLOORS.includes(e);
      mrows.push([e, fmtBytes(m.rssPerVm), isFloor ? 'n/a' : fmtBytes(m.externalPerVm),
        isFloor ? 'n/a' : fmtBytes(m.heapPerVm), isFloor ? fmtBytes(m.mallocPerVm) : 'n/a']);
    }
    out.push(table(mrows));
  }

  if (targets.length) {
    out.push('');
    out.push('Targets (issue 5), from the medians above:');
    out.push(table([['target', 'measured', 'met'],
      ...targets.map((t) => [t.target, t.value, t.met == null ? '—' : t.met ? 'yes' : 'NO'])]));
  }
  if (has('cpp')) {
    notes.push('cpp: its per-call cost grows with every value it has handed out (handles are never released), ' +
      'so its boundary workloads run on a fresh VM per batch of at most 1,000 operations (40 for 1 kB strings).');
  }
  if (has('node')) notes.push('node: V8 inlines the guest functions into the timing loops; its figures show the JIT, not a boundary.');
  if (notes.length) {
    out.push('');
    out.push('Notes:');
    for (const n of notes) out.push('  - ' + n);
  }
  return out.join('\n');
}

// ---- Main -----------------------------------------------------------------

function main() {
  const opts = parseArgs(process.argv.slice(2));
  addonPath = opts.addon;
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvium-bench-'));
  try {
    const ctx = { opts, mainPath: path.join(tmp, 'main.mvm'), restorePath: path.join(tmp, 'restore.mvm') };
    const mainBytes = compileSnapshot(MAIN_SOURCE);
    const restoreBytes = compileSnapshot(RESTORE_SOURCE);
    fs.writeFileSync(ctx.mainPath, mainBytes);
    fs.writeFileSync(ctx.restorePath, restoreBytes);
    log(`snapshots: workloads ${mainBytes.length} B, restore/memory ${restoreBytes.length} B`);

    let engines = opts.engines.slice();
    const skipped = {};
    if (engines.includes('floor')) {
      try {
        ctx.floor = opts.floorBin ? { path: opts.floorBin, cc: 'prebuilt', flags: [] } : buildFloor(opts.floorCflags);
        log(`floor: ${path.relative(ROOT, ctx.floor.path)} (${ctx.floor.cc} ${ctx.floor.flags.filter((f) => !f.startsWith('-I') && !f.startsWith('-Wno')).join(' ')})`);
      } catch (e) {
        skipped.floor = e.message;
      }
    }
    if (engines.includes('unchecked')) {
      try {
        ctx.unchecked = buildFloor(opts.floorCflags, 'unchecked');
        log(`unchecked: ${path.relative(ROOT, ctx.unchecked.path)} (-DGLUE_UNCHECKED)`);
      } catch (e) {
        skipped.unchecked = e.message;
      }
    }
    for (const [e, file] of [['addon', opts.addon], ['limited', opts.addon], ['baseline', opts.baseline]]) {
      if (!engines.includes(e)) continue;
      const why = probeAddon(file);
      if (why) skipped[e] = 'does not load: ' + why;
    }
    for (const [e, why] of Object.entries(skipped)) log(`skipping ${e}: ${why}`);
    engines = engines.filter((e) => !skipped[e]);
    if (!engines.length) throw new Error('no engine to run');

    const rounds = [];
    const memRuns = [];
    const roundCount = opts.workloads.length ? opts.rounds : (opts.memory ? opts.memoryRounds : 0);
    for (let r = 0; r < roundCount; r++) {
      // rotate the order every round, so no engine always runs first
      const order = engines.map((_, i) => engines[(i + r) % engines.length]);
      const round = {};
      const parts = [];
      for (const e of opts.workloads.length ? order : []) {
        round[e] = runRound(e, ctx);
        const errs = Object.values(round[e].results).filter((x) => x.error).length;
        parts.push(`${e} ${(round[e].ms / 1000).toFixed(1)} s${errs ? ` (${errs} failed)` : ''}`);
      }
      rounds.push(round);
      if (opts.memory && r < opts.memoryRounds) {
        const mem = {};
        // (a time limit changes nothing in an idle VM's memory)
        for (const e of order) if (e !== 'limited') mem[e] = runMemory(e, ctx);
        memRuns.push(mem);
        parts.push('memory');
      }
      log(`round ${r + 1}/${roundCount}: ${parts.join(', ')}`);
    }

    const summary = summarize(rounds, engines, opts.workloads);
    const memory = opts.memory ? summarizeMemory(memRuns, engines) : null;
    const targets = checkTargets(summary, memory, engines);
    const text = report(summary, memory, targets, engines, opts.workloads);
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write('\n' + text + '\n');
    for (const [e, why] of Object.entries(skipped)) process.stdout.write(`  - ${e} not measured: ${why}\n`);
    if (engines.includes('addon')) {
      // The membrane workloads (issue 3): addon only, in their own process.
      try {
        const out = require('node:child_process').execFileSync(process.execPath,
          ['--expose-gc', path.join(__dirname, 'membrane.js')], { encoding: 'utf8', timeout: 300000 });
        process.stdout.write('\n' + out);
      } catch (e) {
        process.stdout.write(`\nmembrane workloads failed: ${e.message}\n`);
      }
      // The stop latency of the sandbox limits (issue 15), in its own process.
      try {
        const out = require('node:child_process').execFileSync(process.execPath,
          [path.join(__dirname, 'limits.js'), '--rounds', String(opts.rounds)],
          { encoding: 'utf8', timeout: 300000, env: { ...process.env, MICROVIUM_BENCH_ADDON: opts.addon } });
        process.stdout.write('\n' + out);
      } catch (e) {
        process.stdout.write(`\nlimits stop latency failed: ${e.message}\n`);
      }
    }
    process.stdout.write(`\n${roundCount} rounds${opts.quick ? ' (--quick: a smoke test, not a measurement)' : ''}, ` +
      `${os.cpus().length} × ${os.cpus()[0].model.trim()}, Node ${process.version}, ${seconds.toFixed(0)} s\n`);

    if (opts.json) {
      const doc = {
        meta: {
          date: new Date().toISOString(), node: process.version, platform: `${os.platform()}-${os.arch()}`,
          cpus: os.cpus().length, cpu: os.cpus()[0].model.trim(), quick: opts.quick, rounds: opts.rounds,
          budgetMs: opts.budgetMs, memoryCount: opts.memoryCount, engines, skipped,
          floor: ctx.floor ? { cc: ctx.floor.cc, flags: ctx.floor.flags } : null,
          unchecked: ctx.unchecked ? { cc: ctx.unchecked.cc, flags: ctx.unchecked.flags } : null,
          snapshotBytes: { main: mainBytes.length, restore: restoreBytes.length }, seconds,
          unit: 'ns per operation (objects, closures: ns per whole workload)',
        },
        workloads: Object.fromEntries(opts.workloads.map((w) => [w, DESCRIPTIONS[w]])),
        summary, memory, targets, rounds, memoryRuns: memRuns,
      };
      fs.writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n');
      log(`wrote ${opts.json}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(1);
}
