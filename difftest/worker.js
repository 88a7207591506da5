'use strict';
// Child process that compiles and runs programs for run.js / reduce.js.
// The addon may crash or hang on a bad program: doing the work here keeps
// the parent alive, and the parent turns a dead or silent child into a
// finding of its own.
//
// Messages in:  { id, type: 'gen', seed, index } | { id, type: 'src', source }
// Messages out: { id, result }

const { generate } = require('./generate');
const h = require('./harness');

const addonPath = process.env.DIFFTEST_ADDON || undefined;
const addon = h.loadAddon(addonPath);

function summarise(source, res, full) {
  const out = { compiled: res.compiled, compileMs: res.compileMs };
  if (!res.compiled) { out.reject = res.reject; out.compileError = res.compileError; return out; }
  out.nodeMs = res.nodeMs; out.guestMs = res.guestMs;
  out.diffs = res.diffs;
  out.nodeEnd = res.node.end.kind;
  if (res.diffs || full) {
    out.source = source;
    out.node = h.outcomeText(res.node);
    out.guest = h.outcomeText(res.guest);
  }
  return out;
}

process.on('message', (msg) => {
  let result;
  const cpu0 = process.cpuUsage();
  try {
    if (msg.type === 'gen') {
      const { source } = generate(msg.seed, msg.index);
      // The index goes out before the work: if the addon kills this
      // process, the parent knows which program did it.
      result = summarise(source, h.runProgram(source, addon), false);
    } else if (msg.type === 'src') {
      result = summarise(msg.source, h.runProgram(msg.source, addon), msg.full);
    } else if (msg.type === 'gc') {
      if (global.gc) global.gc();
      result = {};
    } else {
      result = { error: 'unknown message type ' + msg.type };
    }
  } catch (e) {
    result = { error: String(e && e.stack || e) };
  }
  const cpu = process.cpuUsage(cpu0);
  if (result) result.cpuMs = (cpu.user + cpu.system) / 1000;
  process.send({ id: msg.id, result });
});

process.send({ ready: true });
