'use strict';
// A time-bounded mutation fuzzer that runs through the addon itself, so it
// needs no C toolchain (CI runs it; `npm run fuzz` is the coverage-guided
// libFuzzer harness for deeper runs).
//
//   node fuzz/mutate.js [seconds] [--seed N]      # default 60 s, random seed
//
// Seeds are compiled at run time from the guest scripts of
// fuzz/make-corpus.js. Each round mutates them (1 to 8 random byte edits
// past the header, then the CRC is fixed so the engine sees the content),
// and fuzz/replay.js restores each mutant with every import it asks for and
// calls, constructs and reads every export in a child process. A mutant
// that crashes or hangs (10 s) its child is copied to fuzz/crashes-addon/.
// Prints the seed, the mutants run, and what failed; exits 1 if anything
// did. Replaying a run: the same --seed and seconds give the same mutants
// in the same order.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { replayFiles } = require('./replay.js');
const { crc16, fixCrc } = require('./crc.js');

const BATCH = 200;

/** A small deterministic PRNG (mulberry32), so a run can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 1 to 8 random edits past the 12-byte header, then the CRC fixed. */
function mutate(original, random) {
  const v = original.slice();
  const edits = 1 + Math.floor(random() * 8);
  for (let e = 0; e < edits; e++) {
    const at = 12 + Math.floor(random() * (v.length - 12));
    const r = random();
    if (r < 0.35) v[at] = Math.floor(random() * 256);
    else if (r < 0.5) v[at] = 0;
    else if (r < 0.65) v[at] = 0xff;
    else if (r < 0.85) v[at] ^= 1 << Math.floor(random() * 8);
    else {
      // Copy a 2-byte word from elsewhere (pointers, offsets, opcodes).
      const from = 12 + Math.floor(random() * (v.length - 13));
      v[at] = v[from];
      if (at + 1 < v.length) v[at + 1] = v[from + 1];
    }
  }
  return fixCrc(v);
}

async function main() {
  const args = process.argv.slice(2);
  let seconds = 60;
  let seed = Math.floor(Math.random() * 2 ** 31);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seed') seed = Number(args[++i]);
    else seconds = Number(args[i]);
  }
  if (!(seconds > 0) || !Number.isInteger(seed)) {
    console.error('usage: node fuzz/mutate.js [seconds] [--seed N]');
    process.exit(2);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'microvium-mutate-'));
  const seedsDir = path.join(work, 'seeds');
  fs.mkdirSync(seedsDir);
  execFileSync(process.execPath, [path.join(__dirname, 'make-corpus.js'), seedsDir], { stdio: 'ignore' });
  const seeds = fs.readdirSync(seedsDir).map((f) => new Uint8Array(fs.readFileSync(path.join(seedsDir, f))));
  console.log(`fuzz/mutate.js: seed ${seed}, ${seconds} s, ${seeds.length} seed snapshots`);

  const random = prng(seed);
  const deadline = Date.now() + seconds * 1000;
  const failures = [];
  let run = 0;
  try {
    while (Date.now() < deadline) {
      const files = [];
      for (let i = 0; i < BATCH; i++) {
        const file = path.join(work, `m${run + i}.mvm`);
        fs.writeFileSync(file, mutate(seeds[Math.floor(random() * seeds.length)], random));
        files.push(file);
      }
      for (const f of await replayFiles(files, { timeoutMs: 10000 })) {
        const keep = path.join(__dirname, 'crashes-addon');
        fs.mkdirSync(keep, { recursive: true });
        const dest = path.join(keep, `seed${seed}-${path.basename(f.file)}`);
        fs.copyFileSync(f.file, dest);
        failures.push({ ...f, file: dest });
        console.log(`${f.why}\t${dest}\n${f.stderr}`);
      }
      for (const f of files) fs.rmSync(f);
      run += BATCH;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(`fuzz/mutate.js: ${run} mutants, ${failures.length} crashed or hung (seed ${seed})`);
  process.exitCode = failures.length ? 1 : 0;
}

if (require.main === module) main();

module.exports = { crc16, prng, fixCrc, mutate };
