'use strict';
// Shared test helpers: compile guest source to a snapshot with the
// `microvium` compiler (at test time, as the tests require), and run code in
// a child process so that a crash fails a test instead of the runner.

const { spawnSync } = require('node:child_process');
const path = require('node:path');
const mv = require('microvium/dist/lib');

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

module.exports = { compile, runIsolated, root };
