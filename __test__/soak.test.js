'use strict';
// A VM that serves a long message stream, as people use it: one VM restored
// once, acting as a rules engine. Every message is an object with keys the
// VM has never seen before, nested arrays and strings; every 50th goes
// through an async import; the guest keeps a bounded cache of its own. Each
// result is compared with plain Node.js running the same rules (the
// reference), the VM must be alive at the end, and RSS, the guest heap and
// live handles must stay bounded.
//
// `npm test` serves 100,000 messages; `npm run test:soak` the full
// 1,000,000 (SOAK_MESSAGES overrides both). The RSS curve is printed as a
// diagnostic.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const nodeVm = require('node:vm');
const Microvium = require('..');
const { compile, gc } = require('./helpers');

const MB = 1024 * 1024;
const MESSAGES = Number(process.env.SOAK_MESSAGES) ||
  (process.env.npm_lifecycle_event === 'test:soak' ? 1000000 : 100000);
const SAMPLES = 10;
// Under AddressSanitizer (scripts/test-asan.sh) freed memory sits in a
// quarantine and RSS says nothing about the addon; LeakSanitizer checks leaks.
const RSS_BOUND = process.env.ASAN_SKIP_RSS ? Infinity : 40 * MB;

// The rules. Export 1 handles a message synchronously, export 2 with an
// async lookup first. Import 1 is a synchronous host lookup, import 2 an
// asynchronous one.
const RULES = `
  const lookupRate = vmImport(1);
  const fetchLimit = vmImport(2);

  // A bounded cache of the guest's own: one entry per region, 97 regions.
  const cache = {};
  let cacheHits = 0;

  function userKeyOf(msg) {
    const keys = Reflect.ownKeys(msg);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k !== 'id' && k !== 'tags' && k !== 'text' && k !== 'region') return k;
    }
    return undefined;
  }

  function evaluate(msg, limit) {
    const key = userKeyOf(msg);
    const user = msg[key];
    let total = 0;
    for (let i = 0; i < user.scores.length; i++) {
      const s = user.scores[i];
      if (typeof s === 'number') total = total + s;
      else for (let j = 0; j < s.length; j++) total = total + s[j];
    }
    const regionKey = 'region-' + msg.region;
    let rate = cache[regionKey];
    if (rate === undefined) {
      rate = lookupRate(msg.region);
      cache[regionKey] = rate;
    } else {
      cacheHits = cacheHits + 1;
    }
    const tags = [];
    for (let i = 0; i < msg.tags.length; i++) {
      if (msg.tags[i] !== 'skip') tags.push(msg.tags[i] + ':' + user.name);
    }
    const score = total * rate + (msg.id % 13);
    return {
      id: msg.id,
      user: key,
      score: score,
      flagged: score > limit || msg.text === 'alert',
      tags: tags,
      summary: user.name + '/' + tags.length + '/' + (score | 0),
    };
  }

  vmExport(1, (msg) => evaluate(msg, 500));
  vmExport(2, async (msg) => {
    const limit = await fetchLimit(msg.region);
    return evaluate(msg, limit);
  });
  vmExport(3, () => cacheHits);
`;

const lookupRate = (region) => (region % 5) + 1;
const fetchLimit = async (region) => 100 + region * 7;

function message(i) {
  return {
    id: i,
    ['user-' + i]: {
      name: 'n' + (i % 1009),
      scores: [i % 7, i % 11, [i % 3, 2, (i * 7) % 17]],
    },
    tags: ['t' + (i % 13), i % 4 === 0 ? 'skip' : 'x', 'u' + (i % 5)],
    text: i % 97 === 0 ? 'alert' : 'message ' + i,
    region: i % 97,
  };
}

// The reference: the same rules in plain Node.js.
function reference() {
  const exports = {};
  const context = nodeVm.createContext({
    vmImport: (id) => (id === 1 ? lookupRate : fetchLimit),
    vmExport: (id, f) => { exports[id] = f; },
  });
  nodeVm.runInContext(RULES, context);
  return exports;
}

// A guest result (a proxy) and a reference result as plain data.
const plain = (r) => JSON.parse(JSON.stringify(r));

test(`a rules engine serves ${MESSAGES.toLocaleString('en')} messages with new keys, async lookups and its own cache`, { timeout: 900000 }, async (t) => {
  const vm = Microvium.restore(compile(RULES), { 1: lookupRate, 2: fetchLimit });
  const ref = reference();
  const [handle, handleAsync, hits] = [vm.exports[1], vm.exports[2], vm.exports[3]];
  const curve = [];
  const sample = (i) => curve.push({
    i, rss: process.memoryUsage().rss, heap: vm.getMemoryStats().virtualHeapUsed,
    live: Microvium.__internals.liveHandles(vm),
  });
  const t0 = Date.now();
  for (let i = 1; i <= MESSAGES; i++) {
    const msg = message(i);
    const asyncOne = i % 50 === 0;
    const got = asyncOne ? await handleAsync(msg) : handle(msg);
    const want = asyncOne ? await ref[2](message(i)) : ref[1](message(i));
    // Every result is checked; a full comparison every 10th keeps the
    // million-message run short.
    if (i % 10 === 0 || asyncOne) assert.deepEqual(plain(got), plain(want), `message ${i}`);
    else assert.equal(got.summary, want.summary, `message ${i}`);
    if (i % (MESSAGES / SAMPLES) === 0) {
      // Let V8 collect the dropped results (a test may force it; the
      // library itself never does) and their finalizers run.
      if (typeof gc === 'function') gc();
      await new Promise(setImmediate);
      await new Promise(setImmediate);
      sample(i);
    }
  }
  assert.equal(vm.exports[3](), hits(), 'the VM is alive');
  assert.ok(hits() > MESSAGES / 2, 'the guest cache was used');
  assert.equal(Microvium.__internals.status(vm), 'live');
  const seconds = (Date.now() - t0) / 1000;
  t.diagnostic(`${MESSAGES.toLocaleString('en')} messages in ${seconds.toFixed(1)} s; RSS curve (MB): ` +
    curve.map((c) => `${c.i / 1000}k:${(c.rss / MB).toFixed(1)}`).join(' ') +
    `; guest heap (B): ${curve.map((c) => c.heap).join(' ')}; live handles: ${curve.map((c) => c.live).join(' ')}`);
  const first = curve[1] || curve[0];
  const last = curve[curve.length - 1];
  assert.ok(last.rss - first.rss < RSS_BOUND, `RSS grew ${((last.rss - first.rss) / MB).toFixed(1)} MB`);
  assert.ok(last.live <= first.live + 16, `live handles ${first.live} -> ${last.live}`);
  vm.dispose();
});
