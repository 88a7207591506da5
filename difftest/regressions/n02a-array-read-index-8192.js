// New: reading an array at index 8192 (past the end). Node: undefined.
// Addon 8.0.0: fatal MVM_E_RANGE_ERROR (reads at 8191 give undefined).
const R = vmImport(1);
vmExport(1, () => {
  const a = [1, 2];
  R('a[8191]', a[8191]);
  R('a[8192]', a[8192]);
});
