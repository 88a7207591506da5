'use strict';
// Differential test run: generate programs, run each on the addon and in
// Node, compare, summarise.
//
//   npm run difftest -- SECONDS [--seed S] [--jobs J] [--addon PATH] [--start I]
//                      [--count N] [--no-reduce] [--reduce-known] [--reduce-seconds N]
//                      [--verbose] [--quiet]
//
// Exit code 1 when a discrepancy shows up that difftest/known.json does not
// list (or lists as fixed), or when the addon crashed or hung a process.
// Each new signature's first program is written to difftest/findings/
// (reduced to a small program when the signature is not known).

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Pool } = require('./pool');
const { loadKnown } = require('./known');
const { reduce, sameSignatureTest } = require('./reduce');

const FINDINGS = path.join(__dirname, 'findings');

function parseArgs(argv) {
  const o = { seconds: 60, jobs: 1, reduce: true, reduceSeconds: 60, start: 0, count: Infinity, quiet: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seed') o.seed = argv[++i];
    else if (a === '--jobs') o.jobs = Math.max(1, Number(argv[++i]));
    else if (a === '--addon') o.addon = argv[++i];
    else if (a === '--start') o.start = Number(argv[++i]);
    else if (a === '--count') o.count = Number(argv[++i]);
    else if (a === '--no-reduce') o.reduce = false;
    else if (a === '--reduce-seconds') o.reduceSeconds = Number(argv[++i]);
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--reduce-known') o.reduceKnown = true;
    else if (a === '--help' || a === '-h') o.help = true;
    else rest.push(a);
  }
  if (rest.length) o.seconds = Number(rest[0]);
  if (o.seed === undefined) o.seed = String(crypto.randomInt(1, 2 ** 31));
  return o;
}

function fileSafe(s) {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help || !Number.isFinite(opts.seconds)) {
    console.log('usage: npm run difftest -- SECONDS [--seed S] [--jobs J] [--addon PATH] [--start I] [--count N] [--no-reduce] [--reduce-known] [--reduce-seconds N] [--verbose] [--quiet]');
    process.exit(opts.help ? 0 : 2);
  }
  const known = loadKnown();
  fs.mkdirSync(FINDINGS, { recursive: true });
  console.log(`difftest: seed ${opts.seed}, ${opts.seconds} s, ${opts.jobs} job(s)` +
    (opts.addon ? `, addon ${opts.addon}` : '') + ` (repeat: npm run difftest -- ${opts.seconds} --seed ${opts.seed})`);

  const pool = new Pool(opts.jobs, { addon: opts.addon });
  const t0 = Date.now();
  const deadline = t0 + opts.seconds * 1000;
  const st = {
    generated: 0, compiled: 0, rejected: 0, agreed: 0, disagreed: 0, crashed: 0, hung: 0, errors: 0,
    rejects: new Map(), sigs: new Map(), compileMs: 0, nodeMs: 0, guestMs: 0,
  };
  const reductions = [];
  let reducing = Promise.resolve();
  let nextIndex = opts.start;
  const end = opts.start + opts.count;
  let lastProgress = Date.now();

  function record(index, sig, info) {
    // keyed by signature and the known.json entry that excuses it here (an
    // entry may excuse a signature only in programs matching its sourceMatch)
    const k = known.match(sig, info.source);
    const key = (k ? k.id : 'NEW') + '\t' + sig;
    let s = st.sigs.get(key);
    if (!s) {
      s = { sig, count: 0, first: index, known: k ? k.id : null, detail: info.detail };
      st.sigs.set(key, s);
      const finding = {
        seed: opts.seed, index, signature: sig, known: s.known, detail: info.detail,
        source: info.source, node: info.node, guest: info.guest,
      };
      const file = path.join(FINDINGS, `${fileSafe(sig)}--${fileSafe(opts.seed)}-${index}.json`);
      fs.writeFileSync(file, JSON.stringify(finding, null, 2));
      s.file = file;
      if ((!s.known || opts.reduceKnown) && opts.reduce && info.source) {
        reducing = reducing.then(() => reduceFinding(file, finding, info.values));
      }
    }
    s.count++;
  }

  async function reduceFinding(file, finding, values) {
    const left = deadline - Date.now();
    if (left < 2000) return;
    const seconds = Math.min(opts.reduceSeconds, left / 1000);
    const test = sameSignatureTest(pool, finding.signature, values);
    const { source, tries } = await reduce(finding.source, test, { seconds });
    const res = await pool.run({ type: 'src', source, full: true });
    finding.minimised = source;
    finding.minimisedTries = tries;
    if (!res.crash) { finding.minimisedNode = res.node; finding.minimisedGuest = res.guest; }
    fs.writeFileSync(file, JSON.stringify(finding, null, 2));
    reductions.push(finding.signature);
  }

  async function lane() {
    while (Date.now() < deadline && nextIndex < end) {
      const index = nextIndex++;
      const res = await pool.run({ type: 'gen', seed: opts.seed, index });
      st.generated++;
      if (res.crash) {
        // The addon took the whole process down, or it never answered.
        const sig = 'process-' + res.crash.kind;
        if (res.crash.kind === 'hang') st.hung++; else st.crashed++;
        const { source } = require('./generate').generate(opts.seed, index);
        record(index, sig, { detail: `${res.crash.kind}: exit ${res.crash.code} ${res.crash.signal || ''} ${res.crash.stderr || ''}`.trim(), source });
        continue;
      }
      st.cpuMs = (st.cpuMs || 0) + (res.cpuMs || 0);
      if (res.error) { st.errors++; console.error(`program ${index}: harness error: ${res.error}`); continue; }
      st.compileMs += res.compileMs;
      if (!res.compiled) {
        st.rejected++;
        st.rejects.set(res.reject, (st.rejects.get(res.reject) || 0) + 1);
        continue;
      }
      st.compiled++;
      st.nodeMs += res.nodeMs; st.guestMs += res.guestMs;
      if (!res.diffs) { st.agreed++; continue; }
      st.disagreed++;
      const seen = new Set();
      for (const d of res.diffs) {
        if (seen.has(d.signature)) continue;
        seen.add(d.signature);
        record(index, d.signature, { detail: d.detail, source: res.source, node: res.node, guest: res.guest, values: { nv: d.nv, gv: d.gv } });
      }
      if (!opts.quiet && Date.now() - lastProgress > 15000) {
        lastProgress = Date.now();
        const secs = (Date.now() - t0) / 1000;
        console.error(`  ${secs.toFixed(0)} s: ${st.generated} programs (${(st.generated / secs).toFixed(1)}/s), ${st.disagreed} disagreed, ${st.sigs.size} signatures`);
      }
    }
  }

  const lanes = [];
  for (let i = 0; i < opts.jobs; i++) lanes.push(lane());
  await Promise.all(lanes);
  await reducing;
  pool.close();

  // ---- summary
  const secs = (Date.now() - t0) / 1000;
  const newSigs = [...st.sigs].filter(([, s]) => !s.known);
  console.log('');
  console.log(`seed ${opts.seed}: programs ${opts.start}..${nextIndex - 1}`);
  console.log(`generated ${st.generated}, compiled ${st.compiled}, rejected by compiler ${st.rejected} (${(100 * st.rejected / Math.max(1, st.generated)).toFixed(1)}%), ` +
    `agreed ${st.agreed}, disagreed ${st.disagreed}, crashed ${st.crashed}, hung ${st.hung}` + (st.errors ? `, harness errors ${st.errors}` : ''));
  console.log(`throughput ${(st.generated / secs).toFixed(1)} programs/s over ${secs.toFixed(0)} s with ${opts.jobs} job(s)` +
    ` (per compiled program: compile ${(st.compileMs / Math.max(1, st.generated)).toFixed(1)} ms, node ${(st.nodeMs / Math.max(1, st.compiled)).toFixed(1)} ms, addon ${(st.guestMs / Math.max(1, st.compiled)).toFixed(2)} ms)`);
  const cpuPer = (st.cpuMs || 0) / Math.max(1, st.generated);
  console.log(`worker CPU time ${cpuPer.toFixed(1)} ms per program, i.e. ~${(1000 / Math.max(0.001, cpuPer)).toFixed(0)} programs/s per free core (reductions not included)`);
  if (st.rejects.size) {
    console.log('compiler rejections:');
    for (const [r, n] of [...st.rejects].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(6)}  ${r}`);
  }
  console.log(`distinct discrepancy signatures: ${new Set([...st.sigs.values()].map((x) => x.sig)).size} (${newSigs.length} not excused by known.json)`);
  const byKnown = new Map();
  for (const [, s] of st.sigs) {
    const k = s.known || 'NEW';
    if (!byKnown.has(k)) byKnown.set(k, []);
    byKnown.get(k).push([s.sig, s]);
  }
  const groups = [...byKnown].sort((a, b) => (a[0] === 'NEW' ? -1 : b[0] === 'NEW' ? 1 : 0) ||
    b[1].reduce((n, [, s]) => n + s.count, 0) - a[1].reduce((n, [, s]) => n + s.count, 0));
  for (const [k, list] of groups) {
    const total = list.reduce((n, [, s]) => n + s.count, 0);
    console.log(`  [${k}] ${total} hit(s), ${list.length} signature(s)`);
    list.sort((a, b) => b[1].count - a[1].count);
    const show = k === 'NEW' || opts.verbose ? list : list.slice(0, 6);
    for (const [sig, s] of show) {
      console.log(`    ${String(s.count).padStart(6)}  ${sig}   (program ${s.first}: ${String(s.detail).slice(0, 160)})`);
    }
    if (show.length < list.length) console.log(`            … ${list.length - show.length} more`);
  }
  if (newSigs.length) {
    console.log(`\nNEW discrepancies: ${newSigs.length}; findings in ${path.relative(process.cwd(), FINDINGS)}/ (reduced: ${reductions.length}).`);
    console.log(`reduce one with: node difftest/reduce.js ${path.relative(process.cwd(), newSigs[0][1].file)}`);
  }
  process.exitCode = newSigs.length ? 1 : 0;
}

main().catch((e) => { console.error(e); process.exit(2); });
