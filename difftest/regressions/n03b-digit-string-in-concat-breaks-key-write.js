// New (N3, the form the generator hits most): a digit-only string literal as
// an operand of +, and a write with a run-time-built key. Node: 1.
// Addon 8.0.0: MVM_E_INVALID_BYTECODE at the write. Whether it fails depends
// on the other strings in the snapshot: adding a second digit-only literal
// elsewhere can make it pass.
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  const k = '' + 'ab';
  R("o['' + 'ab'] = 1", o[k] = 1, k);
  let sw = '';
  sw = sw + '2';
});
