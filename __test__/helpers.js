'use strict';
// Shared test helpers: compile guest source to a snapshot with the
// `microvium` compiler (at test time, as the tests require), and run code in
// a child process so that a crash fails a test instead of the runner.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const mv = require('microvium/dist/lib');

const fs = require('node:fs');

const cache = new Map();

/** Compiles a guest module; returns the snapshot bytes (Uint8Array). */
function compile(sourceText) {
  let bytes = cache.get(sourceText);
  if (!bytes) {
    const vm = mv.Microvium.create();
    mv.addDefaultGlobals(vm);
    vm.evaluateModule({ sourceText });
    bytes = vm.createSnapshot().data;
    cache.set(sourceText, bytes);
  }
  return new Uint8Array(bytes);
}

const root = path.join(__dirname, '..');

/**
 * The engine's errors, read from the pinned package's microvium.h (not from
 * the code under test): name -> { errno, description (or undefined) }.
 */
const ENGINE_ERRORS = (() => {
  const header = fs.readFileSync(path.join(root, 'node_modules/microvium/dist-c/microvium.h'), 'utf8');
  const errors = {};
  for (const m of header.matchAll(/\/\*\s*(\d+)\s*\*\/\s*(MVM_E_[A-Z0-9_]+),?[ \t]*(?:\/\/[ \t]*([^\r\n]*))?/g)) {
    errors[m[2]] = { errno: Number(m[1]), description: m[3] ? m[3].trim() : undefined };
  }
  return errors;
})();

/** Engine error numbers by name. */
const ERRNO = Object.fromEntries(Object.entries(ENGINE_ERRORS).map(([k, v]) => [k, v.errno]));

/**
 * The message the WebAssembly runtime gives for an engine error:
 * `Microvium Error: NAME (N)`, then `: description` where microvium.h has one.
 */
function engineMessage(code) {
  const e = ENGINE_ERRORS[code];
  if (!e) throw new Error(`no engine error ${code}`);
  return `Microvium Error: ${code} (${e.errno})` + (e.description ? `: ${e.description}` : '');
}

/**
 * Runs `code` (a script body; `Microvium`, `compile` and `assert` are in
 * scope) in a fresh Node process. Returns { status, signal, stdout, stderr }.
 */
function runIsolated(code, { timeout = 60000, args = [] } = {}) {
  const prelude =
    `const Microvium = require(${JSON.stringify(root)});\n` +
    `const { compile } = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});\n` +
    `const assert = require('node:assert/strict');\n`;
  const r = spawnSync(process.execPath, [...args, '-e', prelude + code], { encoding: 'utf8', timeout });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs a guest program the way the reference does: `source` is a guest
 * script whose export 1 reports values through import 1 (`report(x)`). It
 * runs in plain Node.js (a fresh `node:vm` context with `vmImport` and
 * `vmExport` shims) and in the addon, and both lists of reported values (or
 * the outcome `{ threw: value }`) are returned for the test to compare:
 * what the guest computes must be what JavaScript computes.
 */
function runBoth(source, { args = [] } = {}) {
  const run = (exports, reported) => {
    try {
      const result = exports[1](...args);
      return { reported, result };
    } catch (e) {
      return { reported, threw: e && typeof e === 'object' ? { message: e.message, code: e.code } : e };
    }
  };
  const nodeReported = [];
  const nodeExports = {};
  const context = require('node:vm').createContext({
    vmImport: (id) => (id === 1 ? (x) => { nodeReported.push(x); } : () => undefined),
    vmExport: (id, value) => { nodeExports[id] = value; },
  });
  require('node:vm').runInContext(source, context, { timeout: 10000 });
  const node = run(nodeExports, nodeReported);
  const Microvium = require(root);
  const guestReported = [];
  const vm = Microvium.restore(compile(source), { 1: (x) => { guestReported.push(x); } });
  const guest = run(vm.exports, guestReported);
  return { node, guest, vm };
}

const CHILD_OK = '\n(child finished)\n';

/**
 * Runs `code` in a fresh Node process (see runIsolated) and asserts that it
 * ran to its end: no signal, exit status 0, and its last (synchronous)
 * statement reached.
 * `prelude` is prepended to the code; `args` are Node's flags. Returns
 * { status, signal, stdout, stderr }, stdout without the end marker.
 */
function isolated(code, { prelude = '', args = [], timeout = 60000 } = {}) {
  const r = runIsolated(`${prelude}\n${code}\nprocess.stdout.write(${JSON.stringify(CHILD_OK)});`, { timeout, args });
  const out = `\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.signal, null, `child process died with ${r.signal}${out}`);
  assert.equal(r.status, 0, `child process exited with ${r.status}${out}`);
  // The marker is written when the code's last synchronous statement has
  // run; what the code prints asynchronously may come after it.
  assert.ok(r.stdout.includes(CHILD_OK), `child process did not reach its end${out}`);
  r.stdout = r.stdout.replace(CHILD_OK, '\n');
  return r;
}

/** A turn of the event loop (Node runs deferred finalizers there). */
const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * V8's collector, for tests that check memory is freed. The library never
 * forces collections or turns V8 flags on (it must leave the host process as
 * it found it), and `npm test` starts without --expose-gc to show it: a test
 * process that needs a forced collection turns the flag on for itself, at
 * its first call of this function (so requiring the helpers changes
 * nothing), and gets V8's `gc` without making it a global.
 */
let v8gc = typeof global.gc === 'function' ? global.gc : undefined;
function gc(...args) {
  if (v8gc === undefined) {
    require('node:v8').setFlagsFromString('--expose-gc');
    v8gc = require('node:vm').runInNewContext('gc');
  }
  return v8gc(...args);
}

/** Host GC, then let finalizers run. */
async function settle(rounds = 4) {
  for (let i = 0; i < rounds; i++) {
    gc();
    await tick();
  }
}

/** The error `f` throws (fails if it does not). */
function errorOf(f) {
  try {
    f();
  } catch (e) {
    return e;
  }
  return assert.fail('expected the call to throw');
}

// The snapshot checksum: one implementation, shared with the fuzzers.
const { crc16, fixCrc } = require('../fuzz/crc.js');

module.exports = {
  gc,
  compile, runIsolated, isolated, root, ENGINE_ERRORS, ERRNO, engineMessage, runBoth, crc16, fixCrc,
  tick, settle, errorOf,
};
