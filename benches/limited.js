'use strict';
// The addon with a time limit on every VM: the `limited` engine of run.js.
// benches/worker.js loads it in place of the addon (MICROVIUM_BENCH_ADDON);
// it loads the real one (MICROVIUM_BENCH_LIMITED_ADDON) and sets, on every VM
// it restores, a limit no workload comes near, so that the figures show what
// an armed limit costs (the deadline at each call, the clock read every 2^14
// instructions), not a stop.

const path = require('node:path');

const LIMIT_MS = 10000;
const Microvium = require(process.env.MICROVIUM_BENCH_LIMITED_ADDON || path.join(__dirname, '..', 'index.js'));

function restore(snapshot, imports, opts) {
  const vm = Microvium.restore(snapshot, imports, opts);
  vm.setTimeLimit(LIMIT_MS);
  return vm;
}

module.exports = { restore, LIMIT_MS };
