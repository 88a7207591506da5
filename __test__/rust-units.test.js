'use strict';
// The Rust unit tests (handle table, snapshot validation, number
// formatting...) run with `cargo test`; this runs them as part of npm test,
// so that CI fails when one does.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { root } = require('./helpers.js');

test('cargo test: the Rust unit tests pass', { timeout: 600000 }, () => {
  const r = spawnSync('cargo', ['test', '--lib', '--quiet'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.error, undefined, `cargo could not run: ${r.error && r.error.message}`);
  assert.equal(r.status, 0, `cargo test failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /test result: ok\. [1-9]\d* passed/);
});
