// Known defect 11: a[-1]. Node: undefined. Addon 8.0.0: fatal
// MVM_E_RANGE_ERROR.
const R = vmImport(1);
vmExport(1, () => {
  const a = [1, 2, 3];
  const i = -1;
  R('a[-1]', a[i], i);
});
