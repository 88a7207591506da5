'use strict';
// Shrinks a disagreeing guest program to a small one that still disagrees
// in the same way (same discrepancy signature).
//
//   node difftest/reduce.js FINDING.json|PROGRAM.js [--signature SIG] [--addon PATH] [--seconds N]
//
// prints the minimal program and both outcomes. Works on source text: the
// program is parsed (Babel, which the microvium compiler ships), and
// candidates are made by cutting statements, unwrapping compound
// statements and replacing expressions by a sub-expression or a simple
// literal. `const R = vmImport(1)` and the vmExport(...) calls stay, so the
// exported-function structure is kept. Every candidate is compiled and run
// in a worker process (a crash is an outcome, not the end of the reducer).

const fs = require('fs');
const path = require('path');

function babel() {
  const from = path.dirname(require.resolve('microvium/package.json'));
  return require(require.resolve('@babel/parser', { paths: [from] }));
}

function parse(source) {
  try {
    return babel().parse(source, { sourceType: 'module', plugins: ['classProperties', 'classStaticBlock'] });
  } catch (_) {
    return null;
  }
}

function children(node) {
  const out = [];
  for (const key of Object.keys(node)) {
    if (key === 'loc' || key === 'start' || key === 'end' || key === 'extra' || key === 'leadingComments' || key === 'trailingComments' || key === 'innerComments') continue;
    const v = node[key];
    if (Array.isArray(v)) { for (const x of v) if (x && typeof x.type === 'string') out.push(x); }
    else if (v && typeof v.type === 'string') out.push(v);
  }
  return out;
}

function walk(node, fn, parent) {
  fn(node, parent);
  for (const c of children(node)) walk(c, fn, node);
}

function isProtected(stmt, source) {
  const text = source.slice(stmt.start, stmt.end);
  return /^const R = vmImport\(1\);?$/.test(text) || /^vmExport\(/.test(text);
}

// Lists of sibling statements: [{ list: [nodes], }]
function statementLists(ast) {
  const lists = [];
  walk(ast.program, (node) => {
    if (node.type === 'Program' || node.type === 'BlockStatement') lists.push(node.body);
    else if (node.type === 'SwitchCase') lists.push(node.consequent);
    else if (node.type === 'ClassBody') lists.push(node.body);
  });
  return lists;
}

function splice(source, start, end, text) {
  return source.slice(0, start) + text + source.slice(end);
}

// Is `node` the callee / label of an R(...) report, or a declaration id?
function isReportLabel(node, parent) {
  return parent && parent.type === 'CallExpression' && parent.callee.type === 'Identifier' &&
    parent.callee.name === 'R' && parent.arguments[0] === node;
}

// Expressions that may be replaced by a sub-expression or a literal. Not
// array/object literals, `new`, functions or assignments: replacing those
// changes what kind of thing is read or written, and the small program would
// then show something else under the same name.
const EXPR_TYPES = new Set(['BinaryExpression', 'LogicalExpression', 'UnaryExpression', 'ConditionalExpression',
  'CallExpression', 'MemberExpression', 'TemplateLiteral']);

function isLoopHead(node, parent) {
  if (!parent) return false;
  if (parent.type === 'WhileStatement' || parent.type === 'DoWhileStatement') return parent.test === node;
  if (parent.type === 'ForStatement') return parent.test === node || parent.update === node || parent.init === node;
  return false;
}

function* candidates(source) {
  const ast = parse(source);
  if (!ast) return;
  // 1. Cut chunks of sibling statements, big chunks first.
  for (const list of statementLists(ast)) {
    const items = list.filter((s) => !isProtected(s, source));
    for (let size = Math.max(1, items.length >> 1); size >= 1; size >>= 1) {
      for (let i = items.length - size; i >= 0; i -= size) {
        const chunk = items.slice(i, i + size);
        // keep the text between statements that are not cut
        let out = source;
        for (let j = chunk.length - 1; j >= 0; j--) out = splice(out, chunk[j].start, chunk[j].end, '');
        yield out;
      }
    }
  }
  // 2. Unwrap compound statements.
  const unwraps = [];
  walk(ast.program, (node) => {
    const body = (b) => b && (b.type === 'BlockStatement' ? source.slice(b.start + 1, b.end - 1) : source.slice(b.start, b.end));
    if (node.type === 'IfStatement') {
      unwraps.push([node, body(node.consequent)]);
      if (node.alternate) unwraps.push([node, body(node.alternate)]);
    } else if (node.type === 'WhileStatement' || node.type === 'ForStatement' || node.type === 'DoWhileStatement') {
      unwraps.push([node, body(node.body)]);
    } else if (node.type === 'TryStatement') {
      unwraps.push([node, body(node.block)]);
    } else if (node.type === 'BlockStatement' && node !== undefined) {
      unwraps.push([node, source.slice(node.start + 1, node.end - 1)]);
    }
  });
  for (const [node, text] of unwraps) yield splice(source, node.start, node.end, text);
  // 3. Drop array elements and object properties.
  const parts = [];
  walk(ast.program, (node) => {
    if (node.type === 'ArrayExpression') parts.push(node.elements.filter(Boolean));
    else if (node.type === 'ObjectExpression') parts.push(node.properties);
  });
  for (const list of parts) {
    for (let i = list.length - 1; i >= 0; i--) {
      const el = list[i];
      const next = list[i + 1];
      const prev = list[i - 1];
      if (next) yield splice(source, el.start, next.start, '');
      else if (prev) yield splice(source, prev.end, el.end, '');
      else yield splice(source, el.start, el.end, '');
    }
  }
  // 4. Simplify expressions: a sub-expression or a literal in its place.
  const exprs = [];
  walk(ast.program, (node, parent) => {
    if (!EXPR_TYPES.has(node.type) || isReportLabel(node, parent) || isLoopHead(node, parent)) return;
    if (parent && parent.type === 'CallExpression' && parent.callee === node) return;
    if (node.type === 'CallExpression' && node.callee.type === 'Identifier' && node.callee.name === 'R') return;
    if (parent && (parent.type === 'AssignmentExpression' || parent.type === 'UpdateExpression') && (parent.left === node || parent.argument === node)) return;
    exprs.push(node);
  });
  for (const node of exprs) {
    const text = source.slice(node.start, node.end);
    const subs = children(node).filter((c) => c.type !== 'Identifier' || node.type !== 'MemberExpression' || c !== node.property || node.computed)
      .map((c) => source.slice(c.start, c.end));
    // Literals stay: they are often also R's operands, which must keep
    // describing the computation.
    if (node.type === 'NumericLiteral' || node.type === 'StringLiteral') continue;
    if (node.type === 'UnaryExpression' && /Literal$/.test(node.argument.type)) continue;
    for (const s of subs) if (s !== text && s.length < text.length) yield splice(source, node.start, node.end, '(' + s + ')');
    for (const lit of ['0', '1', 'undefined', '""']) yield splice(source, node.start, node.end, lit);
  }
}

// Tidy-up: drop blank lines and "(x)" around a lone identifier or literal.
function tidy(source) {
  return source.split('\n').filter((l) => l.trim() !== '').join('\n').replace(/ +$/gm, '')
    .replace(/([=,(\[]\s*)\(([A-Za-z_$][\w$]*|-?[\d.]+(?:e[-+]?\d+)?|"[^"]*")\)(?=\s*[;,)\]])/g, '$1$2') + '\n';
}

// reduce(source, test, opts): test(source) -> Promise<boolean> (still the
// same discrepancy). Greedy fixpoint over candidates().
async function reduce(source, test, opts = {}) {
  const deadline = Date.now() + (opts.seconds || 120) * 1000;
  let best = source;
  let tries = 0;
  let progress = true;
  const seen = new Set([best]);
  while (progress && Date.now() < deadline) {
    progress = false;
    for (const cand of candidates(best)) {
      if (Date.now() >= deadline) break;
      if (cand.length >= best.length || seen.has(cand)) continue;
      seen.add(cand);
      tries++;
      if (await test(cand)) {
        best = cand;
        progress = true;
        break;   // re-parse the smaller program
      }
    }
  }
  const t = tidy(best);
  if (t !== best && await test(t)) best = t;
  return { source: best, tries };
}

// A test that runs candidates in a pool worker and checks that `signature`
// (or, for a crash, a crash of the same kind) shows up again.
// With `values` ({ nv, gv }: Node's and the addon's value), a value
// difference must also show the same two values: that keeps the reducer from
// drifting to another defect that happens to have the same signature.
function sameSignatureTest(pool, signature, values) {
  return async (source) => {
    const res = await pool.run({ type: 'src', source }, 60000);
    if (res.crash) return signature === 'process-' + res.crash.kind;
    if (!res.compiled || !res.diffs || res.nodeEnd === 'hang') return false;
    return res.diffs.some((d) => d.signature === signature &&
      (!values || values.nv === undefined || (d.nv === values.nv && d.gv === values.gv)));
  };
}

async function main() {
  const args = process.argv.slice(2);
  let file; let signature; let addon; let seconds = 120;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--signature') signature = args[++i];
    else if (args[i] === '--addon') addon = args[++i];
    else if (args[i] === '--seconds') seconds = Number(args[++i]);
    else file = args[i];
  }
  if (!file) {
    console.error('usage: node difftest/reduce.js FINDING.json|PROGRAM.js [--signature SIG] [--addon PATH] [--seconds N]');
    process.exit(2);
  }
  let source = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.json')) {
    const f = JSON.parse(source);
    source = f.source || require('./generate').generate(f.seed, f.index).source;
    signature = signature || f.signature;
  }
  const { Pool } = require('./pool');
  const pool = new Pool(1, { addon });
  try {
    const first = await pool.run({ type: 'src', source, full: true });
    if (!signature) {
      if (first.crash) signature = 'process-' + first.crash.kind;
      else if (first.diffs) signature = first.diffs[0].signature;
      else { console.error(first.compiled ? 'The program agrees with Node: nothing to reduce.' : 'The program does not compile: ' + first.compileError); process.exit(1); }
    }
    console.error(`reducing for signature: ${signature}`);
    const target = first.diffs && first.diffs.find((d) => d.signature === signature);
    const test = sameSignatureTest(pool, signature, target);
    if (!(await test(source))) { console.error('The program does not show that signature.'); process.exit(1); }
    const { source: min, tries } = await reduce(source, test, { seconds });
    const res = await pool.run({ type: 'src', source: min, full: true });
    console.error(`${tries} candidates tried; ${source.length} -> ${min.length} characters`);
    process.stdout.write(min);
    if (!res.crash) {
      const d = (res.diffs || []).find((x) => x.signature === signature);
      console.log('\n// signature: ' + signature + (d ? '\n// ' + d.detail : ''));
      console.log('/* node:\n' + res.node + '\n   addon:\n' + res.guest + '\n*/');
    }
  } finally {
    pool.close();
  }
}

module.exports = { reduce, sameSignatureTest, candidates, parse };

if (require.main === module) {
  main().catch((e) => { console.error(e); process.exit(1); });
}
