// New: a number key outside 0..8191 on a plain object. Node: 3, 3.
// Addon 8.0.0: fatal MVM_E_RANGE_ERROR at the write.
const R = vmImport(1);
vmExport(1, () => {
  const o = {};
  const k = 8192;
  R('o[8192] = 3', o[k] = 3, k);
  R('o[8192]', o[k], k);
});
