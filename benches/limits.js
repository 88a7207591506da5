'use strict';
// Stop latency of the sandbox limits (issue 15), run by run.js after the main
// table, or alone: `node benches/limits.js [--json FILE] [--rounds N]`.
//
//   time limit   an endless guest loop under vm.setTimeLimit(ms) at 10, 50
//                and 500 ms: how long after the limit the call returns
//                (the overshoot: the poll every 2^14 instructions, the
//                unwinding, the error's construction)
//   interrupt    the same loop stopped by a Worker's Atomics.store on
//                opts.interrupt: from the store (the worker's clock, the
//                same monotonic clock) to the call's return
//
//   cost         the compute workloads of the main table (objects, closures)
//                on one VM, with no limit and with a time limit armed (10 s,
//                never hit), interleaved run by run, compared by their
//                fastest runs (the minimum resists other load on the
//                machine, which moves the cross-process medians of the main
//                table by ±25% here; one VM, because the speed of these
//                workloads differs from VM to VM with where the host's
//                allocator put its heap)
//
// Medians and maxima over the rounds, in milliseconds.

const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Microvium: Compiler, addDefaultGlobals } = require('microvium/dist/lib');
const Microvium = require(process.env.MICROVIUM_BENCH_ADDON || path.join(__dirname, '..', 'index.js'));

const SOURCE = `vmExport(1, () => { let i = 0; while (true) { i = (i + 1) | 0; } });`;

function compile(src) {
  const c = Compiler.create();
  addDefaultGlobals(c);
  c.evaluateModule({ sourceText: src });
  return c.createSnapshot().data;
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function stopCode(f) {
  try {
    f();
  } catch (e) {
    return e.code;
  }
  return 'returned';
}

function timeLimitLatency(bytes, ms, rounds) {
  const vm = Microvium.restore(bytes, {});
  vm.setTimeLimit(ms);
  const overshoot = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = nowMs();
    const code = stopCode(() => vm.exports[1]());
    const took = nowMs() - t0;
    if (code !== 'MVM_E_TIME_LIMIT_REACHED') throw new Error(`a ${ms} ms limit ended the loop with ${code}`);
    overshoot.push(took - ms);
  }
  return { limitMs: ms, rounds, medianOvershootMs: median(overshoot), maxOvershootMs: Math.max(...overshoot),
    worstRatio: (ms + Math.max(...overshoot)) / ms };
}

// The worker waits for the main thread's signal, sleeps `delayMs` so that the
// loop is running, stamps the time and raises the flag.
const WORKER_SOURCE = `
  const { workerData: { shared, stamp, delayMs } } = require('node:worker_threads');
  for (;;) {
    Atomics.wait(shared, 1, 0);
    if (Atomics.load(shared, 1) === 2) break;
    Atomics.wait(shared, 2, 0, delayMs);
    stamp[0] = Number(process.hrtime.bigint()) / 1e6;
    Atomics.store(shared, 0, 1);
    Atomics.store(shared, 1, 0);
  }
`;

async function interruptLatency(bytes, rounds) {
  const shared = new Int32Array(new SharedArrayBuffer(12));
  const stamp = new Float64Array(new SharedArrayBuffer(8));
  const vm = Microvium.restore(bytes, {}, { interrupt: shared });
  vm.setTimeLimit(30000); // a safety net only
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { shared, stamp, delayMs: 20 } });
  await new Promise((resolve) => worker.once('online', resolve));
  const latency = [];
  for (let r = 0; r < rounds; r++) {
    Atomics.store(shared, 1, 1);
    Atomics.notify(shared, 1);
    const code = stopCode(() => vm.exports[1]());
    const end = nowMs();
    if (code !== 'MVM_E_INTERRUPTED') throw new Error(`the interrupt ended the loop with ${code}`);
    latency.push(end - stamp[0]);
  }
  Atomics.store(shared, 1, 2);
  Atomics.notify(shared, 1);
  await new Promise((resolve) => worker.once('exit', resolve));
  return { rounds, medianMs: median(latency), maxMs: Math.max(...latency) };
}

function armedCost(runs) {
  const { MAIN_SOURCE, compileSnapshot } = require('./guest');
  const bytes = compileSnapshot(MAIN_SOURCE);
  const vm = Microvium.restore(bytes, { 1: (x) => x });
  vm.exports[3](1000); // the objects workload's 1,000 objects
  const limits = { off: -1, 'time limit': 10000 };
  const modes = Object.keys(limits);
  const work = { objects: (vm) => vm.exports[4](100), closures: (vm) => vm.exports[5](1000, 100) };
  const out = {};
  for (const [name, f] of Object.entries(work)) {
    const t = Object.fromEntries(modes.map((m) => [m, []]));
    for (let i = 0; i < 3; i++) f(vm);
    for (let i = 0; i < runs; i++) {
      // rotate the order, so that no mode always runs first
      for (let k = 0; k < modes.length; k++) {
        const m = modes[(i + k) % modes.length];
        vm.setTimeLimit(limits[m]);
        const t0 = nowMs();
        f(vm);
        t[m].push(nowMs() - t0);
      }
    }
    out[name] = Object.fromEntries(modes.map((m) => [m, { minMs: Math.min(...t[m]), medianMs: median(t[m]) }]));
  }
  return out;
}

async function main() {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const roundsAt = args.indexOf('--rounds');
  const scale = roundsAt >= 0 ? Number(args[roundsAt + 1]) / 9 : 1;
  const bytes = compile(SOURCE);
  const timeLimit = [
    timeLimitLatency(bytes, 10, Math.max(3, Math.round(31 * scale))),
    timeLimitLatency(bytes, 50, Math.max(3, Math.round(15 * scale))),
    timeLimitLatency(bytes, 500, Math.max(3, Math.round(5 * scale))),
  ];
  const interrupt = await interruptLatency(bytes, Math.max(3, Math.round(31 * scale)));
  const cost = armedCost(Math.max(5, Math.round(61 * scale)));
  const f = (x) => x.toFixed(2) + ' ms';
  const lines = ['Stop latency of the sandbox limits (an endless guest loop):',
    '  limit      rounds  overshoot median  overshoot max  (limit+max)/limit'];
  for (const t of timeLimit) {
    lines.push(`  ${String(t.limitMs).padStart(3)} ms  ${String(t.rounds).padStart(8)}  ${f(t.medianOvershootMs).padStart(16)}` +
      `  ${f(t.maxOvershootMs).padStart(13)}  ${t.worstRatio.toFixed(3).padStart(17)}`);
  }
  lines.push(`  interrupt from a Worker (Atomics.store to the call's return), ${interrupt.rounds} rounds: ` +
    `median ${f(interrupt.medianMs)}, max ${f(interrupt.maxMs)}`);
  lines.push('Cost of an armed time limit (one VM, interleaved; fastest run, and ratio to no limit):');
  for (const [name, r] of Object.entries(cost)) {
    lines.push(`  ${name.padEnd(9)} ` + Object.entries(r).map(([m, v]) =>
      `${m} ${f(v.minMs)}${m === 'off' ? '' : ` (${(v.minMs / r.off.minMs).toFixed(3)}×)`}`).join(', '));
  }
  process.stdout.write(lines.join('\n') + '\n');
  if (jsonAt >= 0) fs.writeFileSync(args[jsonAt + 1], JSON.stringify({ timeLimit, interrupt, cost }, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`limits bench: ${e.stack || e}\n`);
  process.exit(1);
});
