// A guest script: compiled to a snapshot by examples/run.js with the
// `microvium` compiler, then run by the native runtime.
const print = vmImport(1);

let count = 0;

function greet(name) {
  count++;
  print(`Hello, ${name}! (greeting #${count})`);
  return { name, count };
}

class Counter {
  constructor(start) { this.value = start; }
  increment() { this.value++; return this.value; }
}

vmExport(1, greet);
vmExport(2, Counter);
vmExport(3, (a, b) => a + b);
