#!/usr/bin/env node
'use strict';
// Compiles a few varied guest scripts with the `microvium` compiler and
// writes their snapshots to fuzz/corpus/ (or the directory given as the
// first argument), as seeds for fuzz/fuzz_restore.c. Each seed imports host
// function 1 (and some import more ids) and exports functions 1..n, so the
// harness exercises imports, exports and calls. The harness treats imports
// with an even id as async host functions (the async seed awaits them).
//
//   node fuzz/make-corpus.js [outdir]

const fs = require('node:fs');
const path = require('node:path');
const mv = require('microvium/dist/lib');

const scripts = {
  arithmetic: `
    const print = vmImport(1);
    vmExport(1, (a, b) => a + b);
    vmExport(2, (a, b) => a * b - (a / (b || 1)) + (a % 7) - (a ** 2));
    vmExport(3, (a) => { let s = 0; for (let i = 0; i < 50; i++) s += i * 0.5; return s + (a | 0) + (~a) + (a >>> 1) + (a << 3); });
    vmExport(4, (a, b) => a < b ? -1 : a === b ? 0 : 1);
    vmExport(5, () => print(1.5e300 * 1e10));
  `,
  objects: `
    const log = vmImport(1);
    const shared = { x: 1, y: 'two', z: [3], nested: { deep: { deeper: true } } };
    vmExport(1, () => shared);
    vmExport(2, (k, v) => { const o = { a: k, b: v }; o.c = o.a; o[k] = v; o.b = undefined; return o; });
    vmExport(3, (n) => { let head = null; for (let i = 0; i < 40; i++) head = { i, next: head, tag: 'n' + i }; return head; });
    vmExport(4, (o) => { const keys = Reflect.ownKeys(shared); log(keys.length); return keys; });
    vmExport(5, () => { shared.x++; return shared.x; });
  `,
  arrays: `
    const f = vmImport(1);
    let arr = [1, 2, 3, 'four', undefined, null, true];
    vmExport(1, (n) => { const a = []; for (let i = 0; i < 20; i++) a.push(i * (n || 1)); return a; });
    vmExport(2, () => { arr.length = 3; arr[10] = 'hole'; return arr; });
    vmExport(3, (x) => { const a = [x, [x, [x]]]; let s = 0; for (let i = 0; i < a.length; i++) s += typeof a[i] === 'number' ? a[i] : 1; return s; });
    vmExport(4, () => { const src = [5, 6, 7]; const out = []; for (let i = 0; i < src.length; i++) out.push(f(src[i])); return out; });
    vmExport(5, () => { const a = [3, 1, 2]; let t = a[0]; a[0] = a[2]; a[2] = t; return a.length; });
  `,
  closures: `
    const cb = vmImport(1);
    function counter(start) { let n = start; return { inc: () => ++n, get: () => n }; }
    const c = counter(10);
    vmExport(1, () => c.inc());
    vmExport(2, (a) => { const fs = []; for (let i = 0; i < 5; i++) fs.push(() => i + a); let s = 0; for (let i = 0; i < fs.length; i++) s += fs[i](); return s; });
    vmExport(3, (x) => { const compose = (f, g) => y => f(g(y)); return compose(v => v * 2, v => cb(v) + 1)(x); });
    vmExport(4, () => c);
    vmExport(5, (n) => { const fib = k => k < 2 ? k : fib(k - 1) + fib(k - 2); return fib(n > 15 ? 15 : n); });
  `,
  classes: `
    const hostFn = vmImport(1);
    class Animal { constructor(name) { this.name = name; } speak() { return this.name + ' makes a sound'; } }
    class Point { constructor(x, y) { this.x = x; this.y = y; } add(o) { return new Point(this.x + o.x, this.y + o.y); } }
    vmExport(1, Animal);
    vmExport(2, Point);
    vmExport(3, (n) => new Animal('a' + n).speak());
    vmExport(4, (x, y) => { const p = new Point(x, y).add(new Point(1, 1)); return p.x + p.y; });
    vmExport(5, () => { const a = new Animal(hostFn('dog')); return a.speak(); });
  `,
  strings: `
    const echo = vmImport(1);
    const greeting = 'Hello, ';
    vmExport(1, (s) => greeting + s + '!');
    vmExport(2, (a, b) => '' + a + '/' + b + '/' + (a + b));
    vmExport(3, (s) => { let out = ''; for (let i = 0; i < 10; i++) out += 'ab' + i; return out + s; });
    vmExport(4, (s) => typeof s === 'string' ? echo(s + s) : typeof s);
    vmExport(5, (s) => { const o = {}; o[s] = 1; o['k' + s] = 2; return o[s] + o['k' + s]; });
    vmExport(6, () => 0.1 + 0.2 + ' ' + (-0) + ' ' + (1 / 3) + ' ' + (0 / 0));
  `,
  async: `
    const sync = vmImport(1);
    const sleep = vmImport(2);
    const other = vmImport(4);
    async function step(x) { await sleep(x); return x + 1; }
    async function local(x) { return sync(x); }
    vmExport(1, async (x) => { const a = await step(x); const b = await step(a); return a + b; });
    vmExport(2, async () => { try { await other(); throw 'boom'; } catch (e) { return 'caught ' + e; } });
    vmExport(3, (x) => { step(x); return 'started'; });
    vmExport(4, async (s) => { const v = await local(s); return [v, await sleep(s)]; });
  `,
  uint8array: `
    const host = vmImport(1);
    const rom = Microvium.newUint8Array(16);
    for (let i = 0; i < 16; i++) rom[i] = i * 3;
    vmExport(1, (n) => { const u = Microvium.newUint8Array(n > 0 && n < 64 ? n : 8); for (let i = 0; i < u.length; i++) u[i] = i; return u; });
    vmExport(2, () => rom);
    vmExport(3, (u) => { let s = 0; for (let i = 0; i < rom.length; i++) s += rom[i]; return s; });
    vmExport(4, () => { const u = Microvium.newUint8Array(4); u[0] = 255; u[1] = 256; u[2] = -1; return host(u); });
  `,
  importsExports: `
    const f1 = vmImport(1);
    const f2 = vmImport(2);
    const f7 = vmImport(7);
    const f300 = vmImport(300);
    vmExport(1, (a, b) => f1(a, b));
    vmExport(2, (a) => f2(f7(a)));
    vmExport(3, () => f300);
    vmExport(10, (x) => [f1(x), f2(x), f7(x), f300(x)]);
    vmExport(11, { value: 42, fn: () => 1 });
    vmExport(12, 'a string export');
    vmExport(13, 7);
  `,
  control: `
    const h = vmImport(1);
    let state = 0;
    vmExport(1, (x) => { try { if (x) throw { code: x }; return 'ok'; } catch (e) { state++; return e.code; } });
    vmExport(2, (n) => { let i = 0; while (true) { if (i++ > n) break; } return i; });
    vmExport(3, (x) => { switch (x) { case 1: return 'one'; case 2: return 'two'; default: return 'many'; } });
    vmExport(4, (n) => { const r = k => k <= 0 ? 0 : 1 + r(k - 1); return r(n); });
    vmExport(5, () => { let s = 0; while (s < 5) { s += h(1) || 1; } return state + s; });
    vmExport(6, (a) => a && !a || (a === undefined ? 'nullish' : a));
  `,
  globals: `
    const h = vmImport(1);
    let counter = 0;
    const table = [];
    for (let i = 0; i < 30; i++) table.push({ id: i, name: 'item' + i, even: i % 2 === 0 });
    vmExport(1, () => { counter++; return table[counter % table.length]; });
    vmExport(2, (i) => table[i] ? table[i].name : undefined);
    vmExport(3, () => { let garbage = null; for (let i = 0; i < 100; i++) garbage = [garbage, 'x' + i, { i }]; return counter; });
    vmExport(4, (a, b) => h(a, b, table.length));
  `,
};

const out = path.resolve(process.argv[2] || path.join(__dirname, 'corpus'));
fs.mkdirSync(out, { recursive: true });
let total = 0;
for (const [name, sourceText] of Object.entries(scripts)) {
  const vm = mv.Microvium.create();
  mv.addDefaultGlobals(vm);
  vm.evaluateModule({ sourceText });
  const data = vm.createSnapshot().data;
  fs.writeFileSync(path.join(out, name + '.mvm'), data);
  total += data.length;
  console.log(`${name}.mvm: ${data.length} bytes`);
}
console.log(`${Object.keys(scripts).length} snapshots (${total} bytes) in ${out}`);
