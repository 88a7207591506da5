'use strict';
// Guest programs shared by every engine in the benchmark.
//
// The same source text is compiled to a Microvium snapshot (for this addon, the
// `microvium` package's C++ host and the C floor) and run directly by plain
// Node.js (wrapped so that vmImport/vmExport are ordinary JS functions).
//
// Export and import ids are fixed here; benches/floor/floor.c uses the same
// numbers, so keep them in sync.

// The workload program. Import 1 is the identity function `x => x`.
const MAIN_SOURCE = `
const ident = vmImport(1);

// host -> guest call
vmExport(1, (a, b) => a + b);

// guest -> host crossings: n runs of 1,000 calls of the import from a guest
// loop (runs of 1,000 keep every counter a small integer, which the engine
// does not allocate)
vmExport(2, (n) => {
  let last = 0;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < 1000; i++) {
      last = ident(i);
    }
  }
  return last;
});

// 1,000 objects: built once by export 3, then export 4 runs the passes
let objs = [];
vmExport(3, (n) => {
  objs = [];
  for (let i = 0; i < n; i++) {
    objs[i] = { x: i, y: i * 2, z: 0 };
  }
  return objs.length;
});
vmExport(4, (passes) => {
  const arr = objs;
  const n = arr.length;
  for (let p = 0; p < passes; p++) {
    for (let i = 0; i < n; i++) {
      arr[i].z = arr[i].x + arr[i].y;
    }
  }
  return arr[n - 1].z;
});

// closures: n closures allocated, then each called; repeated for each pass
vmExport(5, (n, passes) => {
  let acc = 0;
  for (let p = 0; p < passes; p++) {
    const fns = [];
    for (let i = 0; i < n; i++) {
      const k = i;
      fns[i] = () => k + p;
    }
    for (let i = 0; i < n; i++) {
      acc = (acc + fns[i]()) & 4095;
    }
  }
  return acc;
});

// string round trip
vmExport(6, (s) => s);

// an object the host holds and reads through its proxy
const held = { x: 1, y: 2, z: 3 };
vmExport(7, () => held);

// a fresh object returned to the host, which reads its three properties
vmExport(8, () => ({ a: 1, b: 'two', c: true }));
`;

// A small but ordinary program (~1 kB snapshot) for the restore and memory
// workloads: a few functions, strings, an object and an array in RAM.
const RESTORE_SOURCE = `
const print = vmImport(1);
const state = { count: 0, mode: 'idle', history: [] };
const messages = ['starting', 'running', 'stopping', 'stopped', 'error: unknown command', 'ok', 'busy'];

function setMode(mode) {
  state.history.push(state.mode);
  state.mode = mode;
  state.count = state.count + 1;
  return state.count;
}

function describe() {
  return 'mode=' + state.mode + ' count=' + state.count + ' history=' + state.history.length;
}

class Counter {
  constructor(start) { this.value = start; }
  inc(by) { this.value = this.value + by; return this.value; }
}

function makeCounter(start) { return new Counter(start); }

function sum(list) {
  let total = 0;
  for (let i = 0; i < list.length; i++) total = total + list[i];
  return total;
}

function onEvent(kind, payload) {
  if (kind === 1) return setMode('running');
  if (kind === 2) return setMode('stopped');
  if (kind === 3) { print(messages[4]); return -1; }
  if (kind === 4) return sum(payload);
  print(messages[0]);
  return describe();
}

const commands = {
  start: (args) => onEvent(1, args),
  stop: (args) => onEvent(2, args),
  sum: (args) => onEvent(4, args),
  help: () => 'commands: start, stop, sum <numbers...>, help, status',
  status: () => describe(),
};

function run(name, args) {
  const handler = commands[name];
  if (!handler) { print(messages[4] + ': ' + name); return undefined; }
  const result = handler(args);
  print(name + ' -> ' + result);
  return result;
}

vmExport(1, onEvent);
vmExport(2, describe);
vmExport(5, run);
vmExport(3, makeCounter);
vmExport(4, () => state);
`;

// Plain-Node.js instance of a guest source: runs the module body with
// vmImport/vmExport bound to this instance and returns its exports by id.
function nodeModuleFactory(source) {
  // eslint-disable-next-line no-new-func
  const body = new Function('vmImport', 'vmExport', '"use strict";\n' + source);
  return function instantiate(imports) {
    const exports = Object.create(null);
    body((id) => {
      if (!(id in imports)) throw new Error('missing import ' + id);
      return imports[id];
    }, (id, value) => { exports[id] = value; });
    return exports;
  };
}

function compileSnapshot(source) {
  const mv = require('microvium/dist/lib');
  const vm = mv.Microvium.create();
  mv.addDefaultGlobals(vm);
  vm.evaluateModule({ sourceText: source });
  return Buffer.from(vm.createSnapshot().data);
}

module.exports = { MAIN_SOURCE, RESTORE_SOURCE, nodeModuleFactory, compileSnapshot };
