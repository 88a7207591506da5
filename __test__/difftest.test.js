'use strict';
// Differential test (difftest/): a short fixed-seed sample of generated
// programs, and the regression programs in difftest/regressions/, each run
// on the addon and in Node.js and compared at test time (no expected value
// is written down). Programs run in a child process, so an addon crash
// fails a test instead of the runner.
//
// A regression listed in difftest/known.json under an entry with
// "fixed": false is a todo (reported, not failing) until the fix lands and
// the entry is flipped to "fixed": true.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Pool } = require('../difftest/pool');
const { loadKnown } = require('../difftest/known');

const REGRESSIONS = path.join(__dirname, '..', 'difftest', 'regressions');
const SEED = 'npm-test-1';
const SAMPLE = 200;           // programs, at most
const SAMPLE_BUDGET_MS = 8000; // stop the sample early on a slow machine

const known = loadKnown();
let pool;

test.before(() => { pool = new Pool(1); });
test.after(() => { if (pool) pool.close(); });

function describe(res) {
  if (res.crash) return `the addon ${res.crash.kind === 'hang' ? 'hung' : 'crashed'} the process (${res.crash.signal || res.crash.code})`;
  if (res.error) return 'harness error: ' + res.error;
  if (!res.compiled) return 'rejected by the compiler: ' + res.compileError;
  if (!res.diffs) return 'agrees';
  return res.diffs.map((d) => `${d.signature}: ${d.detail}`).join('\n') +
    `\n--- node:\n${res.node}\n--- addon:\n${res.guest}`;
}

test(`generated programs (seed ${SEED}): no discrepancy that known.json does not excuse`, async (t) => {
  const t0 = Date.now();
  const unexcused = [];
  let ran = 0;
  for (let index = 0; index < SAMPLE && Date.now() - t0 < SAMPLE_BUDGET_MS; index++) {
    const res = await pool.run({ type: 'gen', seed: SEED, index }, 30000);
    ran++;
    assert.ok(!res.crash, `program ${index}: ${describe(res)}`);
    assert.ok(!res.error, `program ${index}: ${describe(res)}`);
    for (const d of res.diffs || []) {
      if (!known.match(d.signature, res.source)) unexcused.push(`program ${index}: ${d.signature}: ${d.detail}`);
    }
  }
  t.diagnostic(`${ran} programs in ${Date.now() - t0} ms`);
  assert.ok(ran >= 20, `only ${ran} programs ran`);
  assert.deepEqual(unexcused, [], `reproduce with: npm run difftest -- 60 --seed ${SEED}`);
});

for (const file of fs.readdirSync(REGRESSIONS).filter((f) => f.endsWith('.js')).sort()) {
  const entry = known.forRegression(file);
  // A regression of a defect not fixed here (an engine limitation or a
  // compiler defect, documented in known.json and the README) is reported,
  // not failed.
  const todo = entry && entry.fixed !== true ? `${entry.id}: ${entry.class} (known.json), not fixed here` : undefined;
  test(`regression ${file} agrees with Node`, { todo }, async () => {
    const source = fs.readFileSync(path.join(REGRESSIONS, file), 'utf8');
    const res = await pool.run({ type: 'src', source, full: true }, 30000);
    assert.ok(res.compiled && !res.crash && !res.error && !res.diffs, describe(res));
  });
}
