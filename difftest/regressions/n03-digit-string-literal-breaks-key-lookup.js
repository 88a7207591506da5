// New: a digit-only string literal that stays in the guest (here only in an
// unused local, not passed to the host) makes a lookup with a run-time-built
// key fatal. Node: undefined. Addon 8.0.0: MVM_E_INVALID_BYTECODE at the
// lookup. Without the `let q = "3"` line, or with "-1" or "1.5", it agrees.
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  R("o['' + 'a']", o['' + 'a']);
  let q = '3';
});
// The same with the literal as an operand of + (the form the generator hits
// most): let sw = ''; sw = sw + '2'; after a run-time-built key write.
