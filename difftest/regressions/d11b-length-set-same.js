// Known defect 11: a.length = a.length. Node: 3, 3. Addon 8.0.0: fatal
// MVM_E_INVALID_ARRAY_INDEX.
const R = vmImport(1);
vmExport(1, () => {
  const a = [1, 2, 3];
  R('a.length = a.length', a.length = a.length);
  R('a.length', a.length);
});
