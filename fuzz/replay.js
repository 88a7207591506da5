'use strict';
// Replays snapshots through the addon itself (not the C harness): fix up
// the size field and CRC, restore with every import the snapshot asks for
// (even ids async), then call, construct and read every export and let
// async calls resume, the way fuzz/fuzz_restore.c does. Each batch runs in
// a child process, so a crash or a hang shows up as that child's exit
// status instead of ending this process.
//
//   node fuzz/replay.js [--timeout-ms N] file.mvm...
//
// One child replays the files in turn, reporting each as it starts; if it
// dies, or one file runs longer than the timeout (default 10 s), that file
// is recorded and a new child goes on with the next. Prints one line per
// file that crashed or hung and a summary; exits 1 if any did.
// __test__/hostile-snapshots.test.js uses replayFiles() on the committed
// regression inputs.

const { spawn } = require('node:child_process');
const path = require('node:path');
const { fixCrc } = require('./crc.js');

const HEADER_SIZE = 28;

/** Import ids listed in a snapshot's import table (section 0). */
function importIds(bytes) {
  if (bytes.length < HEADER_SIZE) return [];
  const u16 = (at) => bytes[at] | (bytes[at + 1] << 8);
  const start = u16(12);
  const end = Math.min(u16(14), bytes.length);
  const ids = [];
  for (let at = start; at + 1 < end; at += 2) ids.push(u16(at));
  return ids;
}

/** What one child does with one snapshot; any exception is fine. As in
 * fuzz/fuzz_restore.c, even import ids are async host functions (every
 * third call rejects), so that guest awaits and resumptions are reached. */
async function exercise(Microvium, bytes) {
  // As the harness does: a finding of `npm run fuzz` is the input before its
  // size field and CRC were fixed up (a no-op for other snapshots).
  if (bytes.length >= HEADER_SIZE && bytes.length <= 0xffff) {
    bytes[4] = bytes.length & 0xff;
    bytes[5] = bytes.length >> 8;
    fixCrc(bytes);
  }
  const imports = {};
  let asyncCalls = 0;
  for (const id of importIds(bytes)) {
    imports[id] = id % 2 ? (x) => x : async (x) => {
      if (++asyncCalls % 3 === 0) throw new Error('rejected by the host');
      return x;
    };
  }
  let vm;
  try {
    vm = Microvium.restore(bytes, imports);
  } catch {
    return;
  }
  const touch = (v, depth) => {
    if (depth > 2 || v === null || (typeof v !== 'object' && typeof v !== 'function')) return;
    try {
      for (const k of Object.keys(v).slice(0, 8)) touch(v[k], depth + 1);
    } catch { /* guest errors are expected */ }
  };
  const shapes = [[], [1, 2], ['a string']];
  for (const id of Object.keys(vm.exports ?? {}).slice(0, 16)) {
    let f;
    try { f = vm.exports[id]; } catch { continue; }
    touch(f, 0);
    if (typeof f !== 'function') continue;
    for (const args of shapes) {
      try {
        vm.stopAfterNInstructions(10000);
        const r = f(...args);
        touch(r, 0);
        // A returned function may be one of our async imports, which the
        // guest can hand back: its promises are ours to handle.
        const again = typeof r === 'function' ? r() : undefined;
        for (const p of [r, again]) if (p instanceof Promise) p.catch(() => {});
      } catch { /* guest errors are expected */ }
      try { new f(...args); } catch { /* not a class */ }
    }
  }
  // Let the host promises settle and the guest resume (under gas, as a
  // continuation may loop like any guest code).
  try { vm.stopAfterNInstructions(10000); } catch { /* poisoned */ }
  for (let turn = 0; turn < 3; turn++) await new Promise(setImmediate);
  try { vm.runGC(); } catch { /* poisoned */ }
  try { vm.createSnapshot(); } catch { /* poisoned */ }
  try { vm.dispose(); } catch { /* poisoned */ }
}

async function childMain() {
  // REPLAY_ADDON: another build of the package to replay against.
  const Microvium = require(process.env.REPLAY_ADDON || path.join(__dirname, '..'));
  const fs = require('node:fs');
  const files = JSON.parse(fs.readFileSync(0, 'utf8'));
  // Progress goes out synchronously, so the parent knows which file was
  // running if this process dies or hangs.
  for (let i = 0; i < files.length; i++) {
    fs.writeSync(1, `start ${i}\n`);
    await exercise(Microvium, new Uint8Array(fs.readFileSync(files[i])));
  }
  fs.writeSync(1, 'done\n');
}

/**
 * Runs files in a child process from `files[0]` on, until the child ends
 * or one file takes longer than timeoutMs. Resolves to { next, failure }:
 * the index to go on from, and the failing file with why (or null).
 */
function runChild(files, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [__filename, '--child'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let current = -1;
    let finished = false;
    let stderr = '';
    let pending = '';
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, timeoutMs);
    };
    let hung = false;
    child.stdout.on('data', (d) => {
      pending += d;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === 'done') finished = true;
        else if (line.startsWith('start ')) { current = Number(line.slice(6)); arm(); }
      }
    });
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (finished && status === 0) return resolve({ next: files.length, failure: null });
      const at = Math.max(current, 0);
      const why = hung ? 'hang' : signal ? `signal ${signal}` : `exit ${status}`;
      resolve({ next: at + 1, failure: { file: files[at], why, stderr: stderr.split('\n').slice(-8).join('\n') } });
    });
    child.stdin.end(JSON.stringify(files));
    arm();
  });
}

/**
 * Replays files; resolves to the files whose child crashed, hung (one file
 * running longer than timeoutMs) or exited non-zero, each with why.
 */
async function replayFiles(files, { timeoutMs = 10000 } = {}) {
  const failures = [];
  let from = 0;
  while (from < files.length) {
    const rest = files.slice(from);
    const { next, failure } = await runChild(rest, timeoutMs);
    if (failure) failures.push(failure);
    from += next;
  }
  return failures;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    childMain();
  } else {
    const opts = {};
    const files = [];
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--timeout-ms') opts.timeoutMs = Number(argv[++i]);
      else files.push(argv[i]);
    }
    replayFiles(files, opts).then((failures) => {
      for (const f of failures) console.log(`${f.why}\t${f.file}`);
      console.log(`${files.length} files, ${failures.length} crashed or hung`);
      process.exitCode = failures.length ? 1 : 0;
    });
  }
}

module.exports = { replayFiles, importIds, exercise };
