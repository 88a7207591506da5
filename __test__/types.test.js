'use strict';
// Type tests for index.d.ts.
//
// Runs the TypeScript compiler (the `typescript` devDependency) once per
// project in __test__/types/, all at the same time:
//
// - tsconfig.json: consumer.mts (ESM), consumer.cts (CommonJS TypeScript),
//   consumer.cjs (checked JavaScript) and expect-error.ts must compile with
//   --strict and "module": "nodenext"; the package resolves through its own
//   package.json "exports" map, as it would for a user.
// - tsconfig.commonjs.json, tsconfig.commonjs-no-interop.json and
//   tsconfig.bundler.json: consumer-esm-syntax.ts must compile with
//   "module": "commonjs" (with and without esModuleInterop) and with
//   "moduleResolution": "bundler".
// - tsconfig.misuse.json: misuse.ts must fail, with exactly one error, of the
//   listed code, on each line marked `// error TSnnnn`, and no other error.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const typesDir = path.join(__dirname, 'types');
const tscPath = require.resolve('typescript/bin/tsc', { paths: [root] });

function runTsc(project) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [tscPath, '-p', path.join(typesDir, project), '--pretty', 'false'],
      { cwd: root, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ exitCode, output: `${stdout}${stderr}`, signal: error && error.signal });
      },
    );
  });
}

// Start every compilation now so they run in parallel; each test awaits its own.
const projects = [
  'tsconfig.json',
  'tsconfig.commonjs.json',
  'tsconfig.commonjs-no-interop.json',
  'tsconfig.bundler.json',
  'tsconfig.misuse.json',
];
const runs = Object.fromEntries(projects.map((p) => [p, runTsc(p)]));

/** `file(line,col): error TSnnnn: message` lines of tsc's output. */
function parseErrors(output) {
  const errors = [];
  for (const line of output.split('\n')) {
    const m = /^(.*)\((\d+),(\d+)\): error (TS\d+): /.exec(line);
    if (m) errors.push({ file: path.resolve(root, m[1]), line: Number(m[2]), code: m[4], text: line });
  }
  return errors;
}

/** Lines of misuse.ts marked `// error TSnnnn`: { line, code, statement }. */
function misuseMarks() {
  const lines = fs.readFileSync(path.join(typesDir, 'misuse.ts'), 'utf8').split('\n');
  const marks = [];
  lines.forEach((text, i) => {
    const m = /^(.*?)\s*\/\/ error (TS\d+)\s*$/.exec(text);
    if (m) marks.push({ line: i + 1, code: m[2], statement: m[1].trim() });
  });
  return marks;
}

function assertCompiles(result) {
  assert.equal(result.signal, null, `tsc was killed (${result.signal})`);
  assert.equal(result.output.trim(), '', 'tsc reported errors');
  assert.equal(result.exitCode, 0);
}

test('consumers compile with --strict under "module": "nodenext" (.mts, .cts, .cjs, expect-error.ts)', async () => {
  assertCompiles(await runs['tsconfig.json']);
});

test('ES import syntax compiles under "module": "commonjs" with esModuleInterop', async () => {
  assertCompiles(await runs['tsconfig.commonjs.json']);
});

test('ES import syntax compiles under "module": "commonjs" without esModuleInterop', async () => {
  assertCompiles(await runs['tsconfig.commonjs-no-interop.json']);
});

test('ES import syntax compiles under "moduleResolution": "bundler"', async () => {
  assertCompiles(await runs['tsconfig.bundler.json']);
});

test('misuse.ts fails to compile, with exactly one error of the listed code on every marked line', async () => {
  const result = await runs['tsconfig.misuse.json'];
  assert.equal(result.signal, null, `tsc was killed (${result.signal})`);
  assert.notEqual(result.exitCode, 0, 'misuse.ts compiled without errors');

  const marks = misuseMarks();
  assert.ok(marks.length >= 50, `expected at least 50 marked lines, found ${marks.length}`);

  const errors = parseErrors(result.output);
  const misusePath = path.join(typesDir, 'misuse.ts');
  const elsewhere = errors.filter((e) => e.file !== misusePath);
  assert.deepEqual(elsewhere.map((e) => e.text), [], 'errors outside misuse.ts (e.g. in index.d.ts)');

  const actual = errors.map((e) => `${e.line}: ${e.code}`);
  const expected = marks.map((m) => `${m.line}: ${m.code}`);
  assert.deepEqual(actual, expected, `tsc output:\n${result.output}`);
  assert.equal(errors.length, marks.length);
});

test('expect-error.ts holds the same lines as misuse.ts, each after a matching @ts-expect-error', () => {
  const lines = fs.readFileSync(path.join(typesDir, 'expect-error.ts'), 'utf8').split('\n');
  const expected = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*\/\/ @ts-expect-error (TS\d+)\s*$/.exec(lines[i]);
    if (m) expected.push({ code: m[1], statement: (lines[i + 1] || '').trim() });
  }
  assert.deepEqual(
    expected,
    misuseMarks().map(({ code, statement }) => ({ code, statement })),
  );
});

// ---------------------------------------------------------------------------
// index.d.ts against the engine's C header and against the module itself.
// ---------------------------------------------------------------------------

const ts = require(require.resolve('typescript', { paths: [root] }));
const dtsPath = path.join(root, 'index.d.ts');
const dts = ts.createSourceFile(dtsPath, fs.readFileSync(dtsPath, 'utf8'), ts.ScriptTarget.Latest, true);
const microviumH = fs.readFileSync(
  require.resolve('microvium/dist-c/microvium.h', { paths: [root] }),
  'utf8',
);

function isExported(node) {
  return (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Export) !== 0;
}
function findDeclaration(kind, name) {
  const node = dts.statements.find((s) => s.kind === kind && s.name && s.name.text === name);
  assert.ok(node, `index.d.ts declares ${name}`);
  return node;
}
function memberName(member) {
  if (!member.name) return undefined;
  if (ts.isComputedPropertyName(member.name)) return `[${member.name.expression.getText(dts)}]`;
  return member.name.text;
}

test('MemoryStats has exactly the fields of mvm_TsMemoryStats, as numbers', () => {
  const struct = /typedef struct mvm_TsMemoryStats \{([\s\S]*?)\} mvm_TsMemoryStats;/.exec(microviumH);
  assert.ok(struct, 'mvm_TsMemoryStats found in microvium.h');
  const cFields = [...struct[1].replace(/\/\/.*$/gm, '').matchAll(/\b\w+\s+(\w+)\s*;/g)].map((m) => m[1]);
  assert.ok(cFields.length >= 12);

  const iface = findDeclaration(ts.SyntaxKind.InterfaceDeclaration, 'MemoryStats');
  const tsFields = iface.members.map((m) => [memberName(m), m.type && m.type.getText(dts), !!m.questionToken]);
  // Then the one field this package adds (the heap cap of opts.maxHeapSize).
  assert.deepEqual(tsFields, [...cFields, 'maxHeapSize'].map((f) => [f, 'number', false]));
});

test('MicroviumErrorCode lists every error name of mvm_TeError except MVM_E_SUCCESS', () => {
  const enumBody = /typedef enum mvm_TeError \{([\s\S]*?)\} mvm_TeError;/.exec(microviumH);
  assert.ok(enumBody, 'mvm_TeError found in microvium.h');
  const cNames = [...enumBody[1].replace(/\/\/.*$/gm, '').matchAll(/\b(MVM_E_\w+)/g)]
    .map((m) => m[1])
    .filter((n) => n !== 'MVM_E_SUCCESS');
  const alias = findDeclaration(ts.SyntaxKind.TypeAliasDeclaration, 'MicroviumErrorCode');
  const tsNames = alias.type.types.map((t) => t.literal.text);
  // Then the package's own (the sandbox limits), past the engine's numbers.
  assert.deepEqual(tsNames, [...cNames, 'MVM_E_TIME_LIMIT_REACHED', 'MVM_E_INTERRUPTED']);
});

// The runtime module must have what index.d.ts declares. Skipped only while
// the package's index.js does not exist yet.
const hasIndexJs = fs.existsSync(path.join(root, 'index.js'));

test('the module exports, at run time, every value index.d.ts declares', { skip: !hasIndexJs && 'index.js not built yet' }, () => {
  const Microvium = require('..');
  const declared = [];
  for (const s of dts.statements) {
    if (!isExported(s)) continue;
    if (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s)) declared.push([s.name.text, 'function']);
    if (ts.isVariableStatement(s)) {
      for (const d of s.declarationList.declarations) declared.push([d.name.text, d.type.getText(dts)]);
    }
  }
  assert.deepEqual(declared.map((d) => d[0]).sort(), [
    'ASYNC_IMPORT', 'MicroviumError', 'MicroviumUint8Array', 'VM', 'engineVersion', 'restore',
  ]);
  const runtimeType = { 'unique symbol': 'symbol' };
  for (const [name, type] of declared) {
    if (name === 'MicroviumUint8Array') {
      assert.equal(typeof Microvium[name], 'function', 'MicroviumUint8Array is a class');
      continue;
    }
    assert.equal(typeof Microvium[name], runtimeType[type] || type, `typeof Microvium.${name}`);
  }
  assert.equal(Microvium.ASYNC_IMPORT, Symbol.for('microvium.asyncImport'));
  assert.equal(Microvium.default, Microvium, 'Microvium.default === Microvium');
  assert.ok(Microvium.MicroviumError.prototype instanceof Error, 'MicroviumError extends Error');
});

test('a VM has every member index.d.ts declares for VM, and getMemoryStats() every MemoryStats field', { skip: !hasIndexJs && 'index.js not built yet' }, () => {
  const Microvium = require('..');
  const compiler = require(require.resolve('microvium', { paths: [root] }));
  const build = compiler.create();
  compiler.addDefaultGlobals(build);
  build.evaluateModule({ sourceText: 'vmExport(1, (a, b) => a + b);' });
  const snapshot = build.createSnapshot().data;

  const vm = Microvium.restore(snapshot, {});
  try {
    const cls = findDeclaration(ts.SyntaxKind.ClassDeclaration, 'VM');
    const members = cls.members.filter((m) => !ts.isConstructorDeclaration(m));
    assert.deepEqual(members.map(memberName).sort(), [
      '[Symbol.dispose]', 'createSnapshot', 'currentAddress', 'dispose', 'engineVersion', 'exports',
      'getInstructionCountRemaining', 'getMemoryStats', 'getTimeLimit', 'release', 'removeBreakpoint',
      'requiredEngineVersion', 'runGC', 'scope', 'setBreakpoint', 'setTimeLimit', 'stopAfterNInstructions',
    ]);
    for (const m of members) {
      const name = memberName(m);
      const value = name === '[Symbol.dispose]' ? vm[Symbol.dispose] : vm[name];
      if (ts.isMethodDeclaration(m)) {
        assert.equal(typeof value, 'function', `vm.${name} is a method`);
      } else {
        assert.ok(name in vm, `vm.${name} exists`);
        // currentAddress is only meaningful during a call; do not read it here.
        if (name === 'currentAddress') continue;
        const type = m.type.getText(dts);
        if (type === 'string' || type === 'number') {
          assert.equal(typeof value, type, `typeof vm.${name}`);
        } else {
          assert.equal(typeof value, 'object', `typeof vm.${name}`);
        }
      }
    }
    assert.equal(vm.exports[1](2, 3), 5);
    assert.equal('then' in vm, false, 'a VM has no then member');

    const iface = findDeclaration(ts.SyntaxKind.InterfaceDeclaration, 'MemoryStats');
    const stats = vm.getMemoryStats();
    // Every declared field is there, as a number; the listed ones are
    // exactly the engine's (maxHeapSize, the package's own, is not listed).
    for (const name of iface.members.map(memberName)) assert.equal(typeof stats[name], 'number', `typeof stats.${name}`);
    assert.deepEqual(Object.keys(stats).sort(), iface.members.map(memberName).filter((n) => n !== 'maxHeapSize').sort());
  } finally {
    vm.dispose();
  }
});
