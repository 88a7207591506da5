'use strict';
// A small pool of worker.js children. run(task) resolves with the worker's
// result, or with { crash: {...} } when the child died or stayed silent
// longer than the task timeout (then a fresh child replaces it).

const { fork } = require('child_process');
const path = require('path');

const WORKER = path.join(__dirname, 'worker.js');
const RECYCLE_AFTER = 400;

class Worker {
  constructor(env, execArgv) {
    this.env = env; this.execArgv = execArgv;
    this.spawn();
  }
  spawn() {
    this.ready = new Promise((resolve) => { this.onReady = resolve; });
    this.pending = null;
    this.tasks = 0;
    this.child = fork(WORKER, [], {
      env: this.env, execArgv: this.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.stderr = '';
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.child.on('message', (m) => {
      if (m.ready) { this.onReady(); return; }
      const p = this.pending;
      if (!p || p.id !== m.id) return;
      this.pending = null;
      clearTimeout(p.timer);
      p.resolve(m.result);
    });
    this.child.on('exit', (code, signal) => {
      this.dead = true;
      const p = this.pending;
      this.pending = null;
      if (p) {
        clearTimeout(p.timer);
        p.resolve({ crash: { kind: p.timedOut ? 'hang' : 'crash', code, signal, stderr: this.stderr } });
      }
      if (!this.closing) { this.dead = false; this.spawn(); }
    });
  }
  // The microvium compiler keeps ~150 kB per compiled program reachable, so
  // a worker is replaced after RECYCLE_AFTER tasks (between tasks).
  recycle() {
    const old = this.child;
    old.removeAllListeners('exit');
    old.kill('SIGKILL');
    this.spawn();
  }
  async run(task, timeoutMs) {
    if (this.tasks >= RECYCLE_AFTER) this.recycle();
    this.tasks++;
    await this.ready;
    return new Promise((resolve) => {
      const id = (Worker.nextId = (Worker.nextId || 0) + 1);
      const p = { id, resolve, timedOut: false };
      p.timer = setTimeout(() => { p.timedOut = true; this.child.kill('SIGKILL'); }, timeoutMs);
      this.pending = p;
      this.child.send({ id, ...task });
    });
  }
  close() {
    this.closing = true;
    try { this.child.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
}

class Pool {
  constructor(n, opts = {}) {
    const env = { ...process.env };
    if (opts.addon) env.DIFFTEST_ADDON = path.resolve(opts.addon);
    const execArgv = ['--expose-gc', '--max-semi-space-size=16'];
    this.timeoutMs = opts.timeoutMs || 60000;
    this.workers = [];
    for (let i = 0; i < n; i++) this.workers.push(new Worker(env, execArgv));
    this.idle = [...this.workers];
    this.waiters = [];
  }
  async acquire() {
    if (this.idle.length) return this.idle.pop();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release(w) {
    const next = this.waiters.shift();
    if (next) next(w); else this.idle.push(w);
  }
  async run(task, timeoutMs) {
    const w = await this.acquire();
    try { return await w.run(task, timeoutMs || this.timeoutMs); } finally { this.release(w); }
  }
  close() { for (const w of this.workers) w.close(); }
}

module.exports = { Pool };
