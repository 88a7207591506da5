'use strict';
// Compiles examples/hello.mvm.js with the microvium compiler and runs the
// snapshot with this package. `npm start` builds the addon and runs this.

const fs = require('node:fs');
const path = require('node:path');
const { Microvium: Compiler, addDefaultGlobals } = require('microvium/dist/lib');
const Microvium = require('..');

const source = fs.readFileSync(path.join(__dirname, 'hello.mvm.js'), 'utf8');
const compiler = Compiler.create();
addDefaultGlobals(compiler);
compiler.evaluateModule({ sourceText: source });
const snapshot = compiler.createSnapshot().data;
console.log(`Compiled hello.mvm.js to a ${snapshot.length}-byte snapshot`);

const vm = Microvium.restore(snapshot, {
  1: (message) => console.log(`[guest] ${message}`),
});

const greet = vm.exports[1];
const Counter = vm.exports[2];
const add = vm.exports[3];

const result = greet('Microvium');
console.log('greet returned', result);
greet('Node.js');
const counter = new Counter(41);
console.log('counter.increment() =', counter.increment());
console.log('add(2, 3) =', add(2, 3));
console.log('engine', Microvium.engineVersion, 'heap used', vm.getMemoryStats().virtualHeapUsed, 'bytes');
vm.dispose();
