'use strict';
// Packaging: `npm pack` the main and linux-x64-gnu packages,
// install both into a fresh project with no toolchain on PATH and no
// registry, then require / import / tsc --strict / run a snapshot there, and
// check that the main package alone fails naming the platform package.
// The work is scripts/test-package.sh (also `npm run test:package`); about
// 4 s. It skips itself on hosts other than Linux x64 glibc.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

test('packed tarballs install and run in a clean project (scripts/test-package.sh)', { timeout: 180_000 }, (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.skip('Linux x64 only');
    return;
  }
  // The host's own binary and platform: no overrides from the caller.
  const env = { ...process.env };
  for (const name of ['BINARY', 'PLATFORM', 'RUN_NODE', 'REQUIRE_GLIBC_FLOOR']) delete env[name];
  const r = spawnSync('bash', [path.join(__dirname, '..', 'scripts', 'test-package.sh')], {
    encoding: 'utf8',
    env,
    timeout: 170_000,
  });
  assert.equal(r.status, 0, `scripts/test-package.sh failed:\n${r.stdout}\n${r.stderr}`);
  if (/^test:package: .* skipped$/m.test(r.stdout)) {
    t.skip(r.stdout.trim()); // e.g. a musl host: it has no linux-x64-gnu package to test
    return;
  }
  assert.match(r.stdout, /test:package: all checks passed/);
});
