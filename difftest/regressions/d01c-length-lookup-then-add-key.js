// New symptom of known defect 1: after a read with a run-time-built
// "length" key, adding a new run-time-built key to the object is fatal.
// Node: undefined, 1. Addon 8.0.0: MVM_E_INVALID_BYTECODE at the write.
const R = vmImport(1);
vmExport(1, () => {
  const o = { a: 1 };
  const l = 'len' + 'gth';
  R('read length', o[l], l);
  const k = 'x' + 'y';
  R('add key', o[k] = 1, k);
});
