// New: a non-integer number index reads the property named by its string
// (absent here). Node: undefined, undefined. Addon 8.0.0: fatal
// MVM_E_TYPE_ERROR.
const R = vmImport(1);
vmExport(1, () => {
  const a = [10, 20];
  R('a[1.5]', a[1.5]);
  R('a[NaN]', a[NaN]);
});
