'use strict';
// Differential harness: compile a guest script with the `microvium` compiler,
// run it on the native addon and in plain Node.js (node:vm), and compare.
//
// A guest program reports values with `R(label, value, ...operands)` where
// R = vmImport(1). The label is "tag#id"; the tag names the feature under
// test and goes into discrepancy signatures. Operands are the inputs of the
// reported operation (variables or literals, so evaluating them again has no
// side effects); Node's operands are classified to make the signature
// (e.g. `|(u32,i14):value`). Export 1 is the main entry; an optional export 2
// runs after a full guest GC (phase 2), reading state kept in top-level
// variables.

const path = require('path');
const nodeVm = require('vm');
const util = require('util');
const { Microvium: Compiler, addDefaultGlobals } = require('microvium/dist/lib');

const DEFAULT_GAS = 3000000;
const NODE_TIMEOUT_MS = 3000;

function loadAddon(addonPath) {
  return require(path.resolve(addonPath || path.join(__dirname, '..')));
}

// ---------------------------------------------------------------- compile

function compile(source) {
  try {
    const c = Compiler.create();
    addDefaultGlobals(c);
    c.evaluateModule({ sourceText: source });
    const bytes = c.createSnapshot().data;
    return { ok: true, bytes };
  } catch (e) {
    const msg = String(e && e.message || e).split('\n')[0];
    return { ok: false, error: msg, reason: rejectReason(msg) };
  }
}

// A short, stable reason for the rejection statistics.
function rejectReason(msg) {
  let m = msg.replace(/\s+at .*$/, '');
  m = m.replace(/missing required globals: .*/, 'missing required globals');
  m = m.replace(/\(\d+:\d+\)/g, '').replace(/"[^"]*"/g, '"…"');
  return m.slice(0, 80);
}

// ---------------------------------------------------------------- values

// Canonical serialisation. Distinguishes -0/0, NaN, undefined/null, types.
// Guest objects (Proxies) are described by kind only; programs report fields.
function ser(v, addon) {
  switch (typeof v) {
    case 'number': return 'n:' + (Object.is(v, -0) ? '-0' : String(v));
    case 'string': return 's:' + JSON.stringify(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'undefined': return 'undefined';
    case 'function': return 'function';
    case 'bigint': return 'bigint:' + v;
    case 'symbol': return 'symbol';
    case 'object':
      if (v === null) return 'null';
      if (addon && v instanceof addon.MicroviumUint8Array) return 'u8';
      if (ArrayBuffer.isView(v)) return 'u8';
      if (Array.isArray(v)) return 'array';
      return 'object';
    default: return typeof v;
  }
}

// Engine strings are UTF-8: lone surrogates become U+FFFD (a representation
// limit, not a defect). Applied to Node's strings before comparing.
function normStr(s) {
  return typeof s.toWellFormed === 'function' ? s.toWellFormed()
    : s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

// The class of an operand, for signatures.
function cls(v) {
  switch (typeof v) {
    case 'number': {
      if (Number.isNaN(v)) return 'nan';
      if (!Number.isFinite(v)) return 'inf';
      if (Object.is(v, -0)) return '-0';
      if (Number.isInteger(v)) {
        if (v >= -8192 && v <= 8191) return 'i14';
        if (v >= -2147483648 && v <= 2147483647) return 'i32';
        if (v >= 0 && v <= 4294967295) return 'u32';
        if (Number.isSafeInteger(v)) return 'i53';
        return 'big';
      }
      return Math.abs(v) < 2147483648 ? 'frac' : 'fbig';
    }
    case 'string': {
      if (v === '') return 's0';
      if (v === 'length' || v === '__proto__') return 's-' + v;
      // canonical integer strings by the class of their number: s-i14, s-u32...
      if (v === '-2147483648') return 's-i32min';
      if (/^(0|-?[1-9]\d*)$/.test(v)) return 's-' + cls(Number(v));
      if (v.trim() !== '' && !Number.isNaN(Number(v))) return 's-num';
      if (/[^\x00-\x7f]/.test(v)) return 's-uni';
      return 's';
    }
    case 'boolean': return 'bool';
    case 'undefined': return 'undef';
    case 'object':
      if (v === null) return 'null';
      if (ArrayBuffer.isView(v)) return 'u8';
      return Array.isArray(v) ? 'arr' : 'obj';
    default: return typeof v;
  }
}

function tagOf(label) {
  const s = String(label);
  const i = s.lastIndexOf('#');
  return i < 0 ? s : s.slice(0, i);
}

// ---------------------------------------------------------------- Node

// Setup run in every fresh context: guest plain objects have null
// prototypes, so the context's Object.prototype is emptied (no __proto__
// accessor, no toString/constructor/hasOwnProperty to find by name).
const SETUP = `
'use strict';
globalThis.Microvium = { newUint8Array: (n) => new Uint8Array(n) };
for (const k of Reflect.ownKeys(Object.prototype)) delete Object.prototype[k];
`;
const setupScript = new nodeVm.Script(SETUP, { filename: 'difftest-setup.js' });

function runNode(source, opts = {}) {
  const reports = [];
  const exportsMap = new Map();
  const end = { phase: 1, kind: 'ok' };
  const R = function (label, value, ...ops) {
    reports.push(mkReport(label, value, ops, true, null));
    return value;
  };
  const sandbox = {
    vmImport: (id) => { if (id === 1) return R; throw new Error('unknown import ' + id); },
    vmExport: (id, f) => { exportsMap.set(id, f); },
    __drive: () => {
      for (const phase of [1, 2]) {
        const f = exportsMap.get(phase);
        if (typeof f !== 'function') break;
        end.phase = phase;
        try { f(); } catch (e) {
          end.kind = 'throw';
          end.value = util.types.isNativeError(e) ? 'error' : ser(e);
          end.valueClass = util.types.isNativeError(e) ? 'error' : cls(e);
          end.message = util.types.isNativeError(e) ? String(e.message) : undefined;
          return;
        }
      }
    },
  };
  const ctx = nodeVm.createContext(sandbox);
  try {
    setupScript.runInContext(ctx);
    const script = new nodeVm.Script('"use strict";' + source + '\n;__drive();\n', { filename: 'program.js' });
    script.runInContext(ctx, { timeout: opts.timeout || NODE_TIMEOUT_MS });
  } catch (e) {
    if (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') { end.kind = 'hang'; }
    else { end.kind = 'throw'; end.phase = 0; end.value = util.types.isNativeError(e) ? 'error' : ser(e); end.message = String(e && e.message); }
  }
  return { reports, end };
}

function mkReport(label, value, ops, isNode, addon) {
  if (isNode && typeof value === 'string') value = normStr(value);
  const r = { label: String(label), v: ser(value, addon) };
  if (ops.length) {
    r.ops = ops.map((o) => ser(isNode && typeof o === 'string' ? normStr(o) : o, addon));
    if (isNode) r.cls = ops.map(cls);
  } else if (isNode) {
    r.cls = [];
  }
  return r;
}

// ---------------------------------------------------------------- guest

function runGuest(bytes, addon, opts = {}) {
  const gas = opts.gas || DEFAULT_GAS;
  const reports = [];
  const end = { phase: 0, kind: 'ok' };
  const R = function (label, value, ...ops) {
    reports.push(mkReport(label, value, ops, false, addon));
    return value;
  };
  let vm;
  try {
    vm = addon.restore(bytes, { 1: R });
  } catch (e) {
    end.kind = 'restore-error';
    end.code = e && e.code;
    end.message = String(e && e.message);
    return { reports, end };
  }
  try {
    for (const phase of [1, 2]) {
      const f = vm.exports[phase];
      if (typeof f !== 'function') break;
      end.phase = phase;
      try {
        // a full collection between the phases: corruption left by phase 1
        // shows up here or in phase 2's reads
        if (phase === 2) vm.runGC(true);
        vm.stopAfterNInstructions(gas);
        f();
      } catch (e) {
        if (e instanceof addon.MicroviumError) {
          end.kind = e.code === 'MVM_E_INSTRUCTION_COUNT_REACHED' ? 'hang' : 'engine-error';
          end.code = e.code;
          end.message = String(e.message);
        } else {
          end.kind = 'throw';
          end.value = ser(e, addon);
          end.valueClass = typeof e === 'object' && e !== null ? 'obj' : cls(e);
        }
        break;
      }
    }
  } finally {
    try { vm.dispose(); } catch (_) { /* ignore */ }
  }
  return { reports, end };
}

// ---------------------------------------------------------------- compare

function describeEnd(end) {
  switch (end.kind) {
    case 'ok': return 'ok';
    case 'throw': return 'throw ' + end.value;
    case 'engine-error': return 'engine error ' + end.code;
    case 'restore-error': return 'restore error ' + end.code;
    case 'hang': return 'hang';
    default: return end.kind + (end.code ? ' ' + end.code : '');
  }
}

function serType(x) {
  if (x === 'true' || x === 'false') return 'bool';
  const i = x.indexOf(':');
  return i < 0 ? x : x.slice(0, i);
}

function valueDiffKind(a, b) {
  const ta = serType(a); const tb = serType(b);
  if (ta !== tb) return 'type:' + ta + '>' + tb;
  if (ta === 'n') {
    if ((a === 'n:0' && b === 'n:-0') || (a === 'n:-0' && b === 'n:0')) return 'neg0';
    if (a === 'n:NaN' || b === 'n:NaN') return 'nan';
  }
  return 'value';
}

function endKindForSig(end) {
  switch (end.kind) {
    case 'engine-error': return 'guest-error:' + end.code;
    case 'restore-error': return 'restore-error:' + end.code;
    case 'hang': return 'guest-hang';
    case 'throw': return 'guest-throw';
    default: return 'guest-' + end.kind;
  }
}

// Operand classes that go into a signature. For feature reports (push,
// calls, closures...) the operands are inputs that do not change what goes
// wrong, so they are left out; for key reads/writes only the key counts.
function sigClasses(tag, classes) {
  if (/^(push|catch|try|call\.|class\.(static|field|typeof)|counter|curry|global|u8|for-let|ownKeys|param|loop|for\.(break|inc)|rec-|arr\[i\]=)/.test(tag)) return [];
  if (/^obj\.(set|get)\[k\]/.test(tag) || /^arr\[odd\]/.test(tag)) return classes.slice(0, 1);
  return classes;
}

// Tags whose value is a function of the reported operands alone (operators,
// conversions, truthiness). After the first difference only these count as
// new ("root") differences: a read of an object, array, closure or class
// may see state that an earlier difference spoilt without being reported.
const PURE = /^([-+*\/%&|^<>=!~?]|u[-+]|typeof$|tpl$|s\+|''\+|\+''|if$|block-if$|while-cond$|Number\.isNaN$|concat===$|x\+\+$|x--$|pre|after|call|class\.(sum|make\.sum|scale)$)/;

function reportSig(r) {
  const tag = tagOf(r.label);
  return tag + '(' + sigClasses(tag, r.cls || []).join(',') + ')';
}

// Compares two outcomes. Returns null when they agree, else a list of
// discrepancies { signature, index, detail }, the first difference first.
// After the first difference only "root" differences are listed: a report
// whose operands agree on both sides but whose value differs (a report whose
// operands differ inherits an earlier difference). Label (control-flow)
// differences and early ends stop the walk.
function compare(node, guest) {
  const out = [];
  const N = node.reports; const G = guest.reports;
  const n = Math.min(N.length, G.length);
  for (let i = 0; i < n; i++) {
    const a = N[i]; const b = G[i];
    if (a.label !== b.label) {
      if (!out.length) {
        out.push({ signature: 'flow:' + tagOf(a.label) + '/' + tagOf(b.label), index: i,
          detail: `report ${i}: node ${a.label}=${a.v}, guest ${b.label}=${b.v}` + (i > 0 ? ` (after ${N[i - 1].label})` : '') });
      }
      return out;
    }
    const ao = (a.ops || []).join(','); const bo = (b.ops || []).join(',');
    if (a.v !== b.v) {
      if (out.length && (ao !== bo || !a.ops || !PURE.test(tagOf(a.label)))) continue;   // inherited
      out.push({ signature: reportSig(a) + ':' + valueDiffKind(a.v, b.v), index: i, nv: a.v, gv: b.v,
        detail: `${a.label}: node ${a.v}, guest ${b.v}` + (a.ops ? ` (operands ${a.ops.join(', ')})` : '') });
    } else if (ao !== bo && !out.length) {
      out.push({ signature: reportSig(a) + ':operand', index: i, detail: `${a.label}: operands node [${ao}], guest [${bo}]` });
    }
  }
  // How each side ended matters only when nothing differed before: after a
  // difference the guest may be on another path or hold other values.
  if (!out.length) {
    const d = compareEnds(node, guest, false);
    if (d) out.push(d);
  }
  return out.length ? out : null;
}

function compareEnds(node, guest, hadDiff) {
  const N = node.reports; const G = guest.reports;
  if (N.length > G.length) {
    // The guest stopped early (or threw where Node did not).
    const next = N[G.length];
    if (guest.end.kind === 'ok') {
      return { signature: reportSig(next) + ':guest-missing-report', index: G.length, detail: `guest ended ok before ${next.label}` };
    }
    if (guest.end.kind === 'restore-error') {
      return { signature: 'restore-error:' + guest.end.code, index: 0, detail: guest.end.message };
    }
    if (guest.end.kind === 'throw' && node.end.kind === 'throw' && throwsAgree(node.end, guest.end)) {
      return { signature: reportSig(next) + ':guest-throw-early', index: G.length, detail: `guest ${describeEnd(guest.end)} before ${next.label}` };
    }
    return { signature: reportSig(next) + ':' + endKindForSig(guest.end), index: G.length,
      detail: `node reported ${next.label}=${next.v}` + (next.ops ? ` (operands ${next.ops.join(', ')})` : '') + `; guest: ${describeEnd(guest.end)}` + (guest.end.message ? ' — ' + guest.end.message : '') };
  }
  if (G.length > N.length) {
    const next = G[N.length];
    const what = node.end.kind === 'throw' ? 'node-threw' : node.end.kind === 'hang' ? 'node-hang' : 'guest-extra-report';
    return { signature: tagOf(next.label) + ':' + what, index: N.length,
      detail: `guest reported ${next.label}=${next.v}; node: ${describeEnd(node.end)}` + (node.end.message ? ' — ' + node.end.message : '') };
  }
  // Same number of reports: compare how each ended.
  const last = N.length ? tagOf(N[N.length - 1].label) : 'start';
  const ne = node.end; const ge = guest.end;
  if (ne.kind === 'ok' && ge.kind === 'ok') return null;
  if (ne.kind === 'hang' && ge.kind === 'hang') return null;
  if (ne.kind === 'throw' && (ge.kind === 'throw' || ge.kind === 'engine-error')) {
    if (throwsAgree(ne, ge)) return null;
    if (hadDiff && ge.kind === 'throw') return null;   // an earlier difference explains a different thrown value
    return { signature: 'end after ' + last + ':' + (ge.kind === 'throw' ? 'thrown-value' : endKindForSig(ge)), index: N.length,
      detail: `node ${describeEnd(ne)}, guest ${describeEnd(ge)}` + (ge.message ? ' — ' + ge.message : '') };
  }
  if (ne.kind === 'throw' && ge.kind === 'ok') {
    return { signature: 'end after ' + last + ':node-threw', index: N.length,
      detail: `node ${describeEnd(ne)}${ne.message ? ' (' + ne.message + ')' : ''}, guest ok` };
  }
  if (ne.kind === 'ok' || ne.kind === 'throw') {
    if (ge.kind === 'restore-error') return { signature: 'restore-error:' + ge.code, index: 0, detail: ge.message };
    return { signature: 'end after ' + last + ':' + endKindForSig(ge), index: N.length,
      detail: `node ${describeEnd(ne)}, guest ${describeEnd(ge)}` + (ge.message ? ' — ' + ge.message : '') };
  }
  return { signature: 'end after ' + last + ':node-' + ne.kind + '/guest-' + ge.kind, index: N.length,
    detail: `node ${describeEnd(ne)}${ne.message ? ' (' + ne.message + ')' : ''}, guest ${describeEnd(ge)}` };
}

// Both threw: primitives must be equal; Node's native error (TypeError...)
// matches a guest engine error or thrown object; a thrown object matches a
// thrown object.
function throwsAgree(ne, ge) {
  if (ne.value === 'error') return ge.kind === 'engine-error' || ge.value === 'object';
  if (ge.kind === 'engine-error') return false;
  const nObj = ne.value === 'object' || ne.value === 'array';
  const gObj = ge.value === 'object' || ge.value === 'array';
  if (nObj || gObj) return nObj && gObj;
  return ne.value === ge.value;
}

// ---------------------------------------------------------------- all

function runProgram(source, addon, opts = {}) {
  const t0 = process.hrtime.bigint();
  const comp = compile(source);
  const t1 = process.hrtime.bigint();
  const res = { compiled: comp.ok, compileMs: Number(t1 - t0) / 1e6 };
  if (!comp.ok) { res.reject = comp.reason; res.compileError = comp.error; return res; }
  const node = runNode(source, opts);
  const t2 = process.hrtime.bigint();
  const guest = runGuest(comp.bytes, addon, opts);
  const t3 = process.hrtime.bigint();
  res.nodeMs = Number(t2 - t1) / 1e6;
  res.guestMs = Number(t3 - t2) / 1e6;
  res.node = node; res.guest = guest;
  res.diffs = compare(node, guest);
  return res;
}

function outcomeText(o) {
  const lines = o.reports.map((r) => `  ${r.label} = ${r.v}` + (r.ops ? `  [${r.ops.join(', ')}]` : ''));
  lines.push('  end: ' + describeEnd(o.end) + (o.end.phase ? ` (phase ${o.end.phase})` : '') + (o.end.message ? ' — ' + o.end.message : ''));
  return lines.join('\n');
}

module.exports = {
  compile, runNode, runGuest, compare, runProgram, loadAddon, ser, cls, tagOf,
  outcomeText, describeEnd, DEFAULT_GAS,
};
